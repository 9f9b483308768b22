/*
 * C baseline for bench/async.ts (benchmark only; never part of the library). Compiled at bench time
 * into the gitignored .bench-c/ directory.
 *
 * Same workloads as the JS async benchmark, with epoll doing what the library's reactor does:
 *   pingpong N : AF_UNIX SOCK_STREAM socketpair; an echo thread blocks in epoll_wait on its end,
 *                recvmsg's 1 byte + 1 fd (MSG_CMSG_CLOEXEC, MSG_DONTWAIT), closes the fd and sends a
 *                1-byte reply; the main thread sends 1 byte + a /dev/null fd, blocks in epoll_wait for
 *                the reply and reads it. Prints the round-trip latency percentiles.
 *   stream N   : a sender thread does N blocking sendmsg of 1 byte + 1 fd; the main thread waits in
 *                epoll_wait and drains with non-blocking recvmsg until EAGAIN, closing every fd.
 *                Prints messages per second.
 *   sync N     : sendmsg + recvmsg + close in one thread (the synchronous round trip). Prints rate.
 *   send N     : the stream sender alone, on an inherited socket at fd 3: N blocking sendmsg of 1 byte
 *                + 1 fd (bench/async.ts times its JS receiver against the same sender).
 * Output lines: "<key> <value>".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static ssize_t send_fd(int sock, int fd) {
  char byte = 'x';
  struct iovec iov = {&byte, 1};
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (fd >= 0) {
    memset(&u, 0, sizeof u);
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    ssize_t r = sendmsg(sock, &m, MSG_NOSIGNAL);
    if (r >= 0 || errno != EINTR) return r;
  }
}

/* Returns bytes read (0 = EOF, -1 = error/EAGAIN); *fd_out = received fd or -1. */
static ssize_t recv_fd(int sock, int *fd_out, int flags) {
  char byte;
  struct iovec iov = {&byte, 1};
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = sizeof u.buf;
  *fd_out = -1;
  ssize_t r;
  for (;;) {
    r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | flags);
    if (r >= 0 || errno != EINTR) break;
  }
  if (r > 0) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(fd_out, CMSG_DATA(c), sizeof(int));
  }
  return r;
}

static int epoll_for(int fd) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  return ep;
}

static void wait_readable(int ep) {
  struct epoll_event ev;
  for (;;) {
    int n = epoll_wait(ep, &ev, 1, -1);
    if (n > 0) return;
    if (n < 0 && errno != EINTR) die("epoll_wait");
  }
}

static int echo_sock;
static void *echo_main(void *arg) {
  (void)arg;
  int ep = epoll_for(echo_sock);
  for (;;) {
    wait_readable(ep);
    for (;;) {
      int fd;
      ssize_t r = recv_fd(echo_sock, &fd, MSG_DONTWAIT);
      if (r == 0) goto out;
      if (r < 0) {
        if (errno == EAGAIN) break;
        die("recvmsg (echo)");
      }
      if (fd >= 0) close(fd);
      if (send_fd(echo_sock, -1) != 1) die("sendmsg (echo)");
    }
  }
out:
  close(ep);
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void pingpong(int n) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  echo_sock = sv[1];
  pthread_t th;
  pthread_create(&th, NULL, echo_main, NULL);
  int ep = epoll_for(sv[0]);
  int warm = n / 10 + 10;
  double *lat = malloc(sizeof(double) * n);
  for (int i = -warm; i < n; i++) {
    double t0 = now_ns();
    if (send_fd(sv[0], devnull) != 1) die("sendmsg");
    int fd;
    for (;;) {
      ssize_t r = recv_fd(sv[0], &fd, MSG_DONTWAIT);
      if (r == 1) break;
      if (r < 0 && errno == EAGAIN) {
        wait_readable(ep);
        continue;
      }
      die("recvmsg (reply)");
    }
    if (i >= 0) lat[i] = now_ns() - t0;
  }
  shutdown(sv[0], SHUT_WR);
  pthread_join(th, NULL);
  qsort(lat, n, sizeof(double), cmp);
  printf("pingpong_p50_ns %.0f\npingpong_p99_ns %.0f\n", lat[n / 2], lat[(int)(n * 0.99)]);
  free(lat);
  close(ep);
  close(devnull);
  close(sv[0]);
  close(sv[1]);
}

static int stream_sock, stream_n, stream_fd;
static void *sender_main(void *arg) {
  (void)arg;
  for (int i = 0; i < stream_n; i++)
    if (send_fd(stream_sock, stream_fd) != 1) die("sendmsg (stream)");
  return NULL;
}

static void stream(int n) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  stream_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  stream_sock = sv[0];
  stream_n = n;
  int ep = epoll_for(sv[1]);
  double t0 = now_ns();
  pthread_t th;
  pthread_create(&th, NULL, sender_main, NULL);
  int got = 0;
  while (got < n) {
    wait_readable(ep);
    for (;;) {
      int fd;
      ssize_t r = recv_fd(sv[1], &fd, MSG_DONTWAIT);
      if (r < 0 && errno == EAGAIN) break;
      if (r != 1 || fd < 0) die("recvmsg (stream)");
      close(fd);
      got++;
    }
  }
  double t1 = now_ns();
  pthread_join(th, NULL);
  printf("stream_msgs_per_s %.0f\n", n / ((t1 - t0) / 1e9));
  close(ep);
  close(stream_fd);
  close(sv[0]);
  close(sv[1]);
}

static void send_only(int n) {
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (int i = 0; i < n; i++)
    if (send_fd(3, devnull) != 1) die("sendmsg (send)");
  close(devnull);
  close(3);
}

static void sync_rt(int n) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  double t0 = now_ns();
  for (int i = 0; i < n; i++) {
    int fd;
    if (send_fd(sv[0], devnull) != 1) die("sendmsg");
    if (recv_fd(sv[1], &fd, 0) != 1 || fd < 0) die("recvmsg");
    close(fd);
  }
  double t1 = now_ns();
  printf("sync_rt_per_s %.0f\n", n / ((t1 - t0) / 1e9));
  close(devnull);
  close(sv[0]);
  close(sv[1]);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s pingpong|stream|sync|send N\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[2]);
  if (n <= 0) return 2;
  if (!strcmp(argv[1], "pingpong")) pingpong(n);
  else if (!strcmp(argv[1], "stream")) stream(n);
  else if (!strcmp(argv[1], "sync")) sync_rt(n);
  else if (!strcmp(argv[1], "send")) send_only(n);
  else return 2;
  return 0;
}
