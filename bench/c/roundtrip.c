/*
 * C baseline for bench/roundtrip.ts (benchmark only; never part of the library).
 *
 * Workload, identical to the JS variants: on an AF_UNIX SOCK_STREAM socketpair, sendmsg 1 data byte
 * plus one SCM_RIGHTS message carrying NFDS copies of a /dev/null fd (MSG_NOSIGNAL), recvmsg it
 * (MSG_CMSG_CLOEXEC) into a preallocated control buffer of CMSG_SPACE(4*NFDS), close every received fd.
 *
 * usage: roundtrip NFDS TARGET_MS REPS
 *   Each rep runs batches of round trips until TARGET_MS has elapsed and prints one line
 *   "ns_per_op <value>". The driver takes the median over reps and rounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 253

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int nfds = argc > 1 ? atoi(argv[1]) : 1;
  double target_ms = argc > 2 ? atof(argv[2]) : 200;
  int reps = argc > 3 ? atoi(argv[3]) : 3;
  if (nfds < 1 || nfds > MAX_FDS) { fprintf(stderr, "nfds must be 1..%d\n", MAX_FDS); return 2; }

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) { perror("socketpair"); return 1; }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) { perror("open"); return 1; }

  static union { char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; struct cmsghdr align; } sctl, rctl;
  size_t ctl_len = CMSG_SPACE(sizeof(int) * nfds);

  unsigned char sbyte = 'x', rbyte = 0;
  struct iovec siov = { &sbyte, 1 }, riov = { &rbyte, 1 };
  struct msghdr smsg, rmsg;
  memset(&smsg, 0, sizeof smsg);
  memset(&rmsg, 0, sizeof rmsg);
  smsg.msg_iov = &siov; smsg.msg_iovlen = 1;
  smsg.msg_control = sctl.buf; smsg.msg_controllen = ctl_len;
  struct cmsghdr *c = CMSG_FIRSTHDR(&smsg);
  c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  int *sfds = (int *)CMSG_DATA(c);
  for (int i = 0; i < nfds; i++) sfds[i] = devnull;
  rmsg.msg_iov = &riov; rmsg.msg_iovlen = 1;
  rmsg.msg_control = rctl.buf;

  int batch = nfds >= 64 ? 16 : 256;
  for (int rep = -1; rep < reps; rep++) { /* rep -1 is warm-up, not printed */
    long ops = 0;
    double t0 = now_ns(), t1 = t0, limit = target_ms * 1e6 * (rep < 0 ? 0.25 : 1.0);
    while (t1 - t0 < limit) {
      for (int k = 0; k < batch; k++) {
        if (sendmsg(sv[0], &smsg, MSG_NOSIGNAL) != 1) { perror("sendmsg"); return 1; }
        rmsg.msg_controllen = ctl_len;
        if (recvmsg(sv[1], &rmsg, MSG_CMSG_CLOEXEC) != 1) { perror("recvmsg"); return 1; }
        struct cmsghdr *r = CMSG_FIRSTHDR(&rmsg);
        if (!r || r->cmsg_type != SCM_RIGHTS) { fprintf(stderr, "no rights\n"); return 1; }
        int n = (int)((r->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *rfds = (int *)CMSG_DATA(r);
        for (int i = 0; i < n; i++) close(rfds[i]);
      }
      ops += batch;
      t1 = now_ns();
    }
    if (rep >= 0) printf("ns_per_op %.1f\n", (t1 - t0) / (double)ops);
  }
  close(sv[0]); close(sv[1]); close(devnull);
  return 0;
}
