# SPDX-License-Identifier: GPL-2.0
# Out-of-tree build of mars.ko. KDIR is a built 7.2 kernel tree with CONFIG_RUST=y (scripts/kernel.sh
# prints one); scripts/build-module.sh calls this with the right KDIR.
KDIR ?= /lib/modules/$(shell uname -r)/build

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) CONFIG_MARS=m modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

.PHONY: modules clean
