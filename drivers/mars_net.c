// SPDX-License-Identifier: GPL-2.0
/* TCP sockets of mars.ko; see mars_net.h. */

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/jiffies.h>
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/tcp.h>
#include <linux/uio.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "mars_net.h"

/* Fills SS from ADDR/PORT; returns the sockaddr length or -EINVAL. */
static int mars_sockaddr(const u8 *addr, int addr_len, u16 port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (addr_len == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, addr, 4);
		return sizeof(*in);
	}
	if (addr_len == 16) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, addr, 16);
		return sizeof(*in6);
	}
	return -EINVAL;
}

static long mars_jiffies(int timeout_ms)
{
	return timeout_ms > 0 ? msecs_to_jiffies(timeout_ms) : 1;
}

/*
 * Options: no Nagle delay (frames are written whole) and TCP keepalive as a second line behind
 * the protocol's own. SO_SNDBUF/SO_RCVBUF stay unset: setting them would switch off the buffer
 * autotuning that lets one connection's window grow to a long fat link's bandwidth-delay product
 * (up to net.ipv4.tcp_{w,r}mem's maximum).
 */
static void mars_sock_tune(struct socket *sock)
{
	tcp_sock_set_nodelay(sock->sk);
	sock_set_keepalive(sock->sk);
}

static int mars_sock_new(int family, struct socket **out)
{
	int err = sock_create_kern(&init_net, family, SOCK_STREAM, IPPROTO_TCP, out);

	if (err)
		return err;
	/* Allocations of the socket never recurse into I/O (MARS's own among them). */
	(*out)->sk->sk_allocation = GFP_NOIO;
	return 0;
}

int mars_sock_listen(const u8 *addr, int addr_len, u16 port, int backlog, struct socket **out)
{
	struct sockaddr_storage ss;
	struct socket *sock;
	int len = mars_sockaddr(addr, addr_len, port, &ss);
	int err;

	if (len < 0)
		return len;
	err = mars_sock_new(ss.ss_family, &sock);
	if (err)
		return err;
	sock_set_reuseaddr(sock->sk);
	err = kernel_bind(sock, (struct sockaddr_unsized *)&ss, len);
	if (!err)
		err = kernel_listen(sock, backlog);
	if (err) {
		sock_release(sock);
		return err;
	}
	*out = sock;
	return 0;
}

int mars_sock_accept(struct socket *listener, int timeout_ms, struct socket **out)
{
	int err;

	listener->sk->sk_rcvtimeo = mars_jiffies(timeout_ms);
	err = kernel_accept(listener, out, 0);
	if (err)
		return err;
	(*out)->sk->sk_allocation = GFP_NOIO;
	mars_sock_tune(*out);
	return 0;
}

int mars_sock_create(int addr_len, struct socket **out)
{
	int family = addr_len == 4 ? AF_INET : addr_len == 16 ? AF_INET6 : -1;
	int err;

	if (family < 0)
		return -EINVAL;
	err = mars_sock_new(family, out);
	if (err)
		return err;
	mars_sock_tune(*out);
	return 0;
}

int mars_sock_connect(struct socket *sock, const u8 *addr, int addr_len, u16 port, int timeout_ms)
{
	struct sockaddr_storage ss;
	int len = mars_sockaddr(addr, addr_len, port, &ss);
	int err;

	if (len < 0)
		return len;
	/* A blocking connect waits up to the send timeout; a shutdown from another thread ends it. */
	sock->sk->sk_sndtimeo = mars_jiffies(timeout_ms);
	err = kernel_connect(sock, (struct sockaddr_unsized *)&ss, len, 0);
	return err == -EINPROGRESS ? -EAGAIN : err;
}

int mars_sock_send(struct socket *sock, const void *buf, size_t len, int timeout_ms)
{
	unsigned long deadline = jiffies + mars_jiffies(timeout_ms);

	while (len) {
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
		struct kvec vec = { .iov_base = (void *)buf, .iov_len = len };
		long left = (long)(deadline - jiffies);
		int n;

		if (left <= 0)
			return -EAGAIN;
		sock->sk->sk_sndtimeo = left;
		n = kernel_sendmsg(sock, &msg, &vec, 1, len);
		if (n < 0)
			return n == -ERESTARTSYS ? -EINTR : n;
		if (n == 0)
			return -EPIPE;
		buf += n;
		len -= n;
	}
	return 0;
}

int mars_sock_recv(struct socket *sock, void *buf, size_t len, int timeout_ms)
{
	unsigned long deadline = jiffies + mars_jiffies(timeout_ms);
	size_t done = 0;

	if (len > INT_MAX)
		return -EINVAL;
	while (done < len) {
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
		struct kvec vec = { .iov_base = buf + done, .iov_len = len - done };
		long left = (long)(deadline - jiffies);
		int n;

		if (left <= 0)
			return -EAGAIN;
		sock->sk->sk_rcvtimeo = left;
		n = kernel_recvmsg(sock, &msg, &vec, 1, len - done, MSG_WAITALL | MSG_NOSIGNAL);
		if (n < 0)
			return n == -ERESTARTSYS ? -EINTR : n;
		if (n == 0)
			return done ? -ECONNRESET : 0;
		done += n;
	}
	return len;
}

int mars_sock_peer(struct socket *sock, u8 *addr, u16 *port)
{
	struct sockaddr_storage ss;
	int err = kernel_getpeername(sock, (struct sockaddr *)&ss);

	if (err < 0)
		return err;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		memcpy(addr, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
		return 4;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		memcpy(addr, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
		return 16;
	}
	return -EAFNOSUPPORT;
}

void mars_sock_shutdown(struct socket *sock)
{
	kernel_sock_shutdown(sock, SHUT_RDWR);
}

void mars_sock_release(struct socket *sock)
{
	sock_release(sock);
}
