/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TCP sockets of mars.ko (kernel sockets in init_net), for the server and client bricks.
 * Addresses are raw bytes: 4 for IPv4, 16 for IPv6, in network order; ports in host order.
 * Every call that can block takes a timeout in milliseconds (> 0) and returns -EAGAIN when it
 * passes; a socket another thread is blocked on can be shut down with mars_sock_shutdown(), which
 * makes that call return. Errors are negative errnos.
 */
#ifndef MARS_NET_H
#define MARS_NET_H

#include <linux/types.h>

struct socket;

/* A socket listening on ADDR (ADDR_LEN 4 or 16 bytes) port PORT, with reuse of the address. */
int mars_sock_listen(const u8 *addr, int addr_len, u16 port, int backlog, struct socket **out);

/* Waits up to TIMEOUT_MS for a connection on LISTENER. */
int mars_sock_accept(struct socket *listener, int timeout_ms, struct socket **out);

/* A TCP socket for an address of ADDR_LEN bytes (4: IPv4, 16: IPv6), not yet connected. */
int mars_sock_create(int addr_len, struct socket **out);

/*
 * Connects SOCK to ADDR/PORT within TIMEOUT_MS (-EAGAIN when it passes). Another thread may
 * shut SOCK down meanwhile, which ends the wait at once.
 */
int mars_sock_connect(struct socket *sock, const u8 *addr, int addr_len, u16 port, int timeout_ms);

/* Sends all LEN bytes of BUF; -EAGAIN if not all went within TIMEOUT_MS (some may have). */
int mars_sock_send(struct socket *sock, const void *buf, size_t len, int timeout_ms);

/*
 * Receives exactly LEN bytes into BUF. Returns LEN, 0 if the peer closed before the first byte,
 * -ECONNRESET if it closed within, -EAGAIN if they did not all arrive within TIMEOUT_MS.
 */
int mars_sock_recv(struct socket *sock, void *buf, size_t len, int timeout_ms);

/* The peer's address into ADDR (16 bytes of room); returns its length (4 or 16) and the port. */
int mars_sock_peer(struct socket *sock, u8 *addr, u16 *port);

/* Shuts both directions down: blocked calls on SOCK return. Any thread, any time. */
void mars_sock_shutdown(struct socket *sock);

/* Releases SOCK; nobody may use it any more. */
void mars_sock_release(struct socket *sock);

#endif /* MARS_NET_H */
