/**
 * FreeBSD amd64 (FreeBSD 12 or later: the 64-byte struct kevent). These tables cannot be run here:
 * every value was checked against a public source, named next to it. Abbreviations in the comments:
 *   fbsd:        freebsd/freebsd-src (sys/sys/socket.h, sys/sys/event.h, sys/sys/ucred.h,
 *                sys/sys/errno.h, sys/x86/include/_align.h, sys/kern/uipc_usrreq.c,
 *                lib/libc/gen/getpeereid.c)
 *   libc-bsd:    rust-lang/libc src/unix/bsd/mod.rs
 *   libc-fbsdl:  rust-lang/libc src/unix/bsd/freebsdlike/mod.rs (FreeBSD + DragonFly)
 *   libc-fbsd:   rust-lang/libc src/unix/bsd/freebsdlike/freebsd/mod.rs
 */
import type { Abi, AbiConstants, ErrnoName } from "./abi.ts";

export const freebsdConstants: AbiConstants = {
  // fbsd socket.h: AF_UNIX 1, AF_INET 2, AF_INET6 28 (libc-fbsdl: AF_INET6 28)
  AF_UNIX: 1, AF_INET: 2, AF_INET6: 28,
  // fbsd socket.h: SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5
  SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_SEQPACKET: 5,
  // fbsd socket.h: SOCK_CLOEXEC 0x10000000, SOCK_NONBLOCK 0x20000000 (libc-fbsdl: same)
  SOCK_NONBLOCK: 0x20000000, SOCK_CLOEXEC: 0x10000000,
  // fbsd socket.h: SOL_SOCKET 0xffff; SCM_RIGHTS 0x01 (SCM_CREDS 0x03 is struct cmsgcred, not used)
  SOL_SOCKET: 0xffff, SCM_RIGHTS: 1,
  // Linux-only: no SCM_CREDENTIALS / SO_PASSCRED / SO_PEERCRED / SO_PASSRIGHTS in fbsd socket.h
  SCM_CREDENTIALS: -1, SO_PASSCRED: -1, SO_PEERCRED: -1, SO_PASSRIGHTS: -1,
  // fbsd socket.h: SO_NOSIGPIPE 0x0800 exists (libc-fbsdl: same); not used, the sigpipe strategy is
  // the MSG_NOSIGNAL flag (docs/design.md, "Platform strategies")
  SO_NOSIGPIPE: 0x0800,
  // fbsd socket.h: SO_TIMESTAMP 0x0400, SCM_TIMESTAMP 0x02 (struct timeval); no SO_TIMESTAMPNS / _NEW spellings
  SO_TIMESTAMP: 0x400, SCM_TIMESTAMP: 2, SO_TIMESTAMPNS: -1, SCM_TIMESTAMPNS: -1,
  SO_TIMESTAMP_NEW: -1, SCM_TIMESTAMP_NEW: -1, SO_TIMESTAMPNS_NEW: -1, SCM_TIMESTAMPNS_NEW: -1,
  // Linux-only pidfds: FreeBSD has no SO_PASSPIDFD / SO_PEERPIDFD / SCM_PIDFD
  SO_PASSPIDFD: -1, SO_PEERPIDFD: -1, SCM_PIDFD: -1,
  // fbsd socket.h: SO_TYPE 0x1008, SO_ACCEPTCONN 0x0002, SO_ERROR 0x1007, SO_SNDBUF 0x1001,
  // SO_RCVBUF 0x1002, SO_REUSEADDR 0x0004 (libc-fbsdl: same); libc-fbsd: SO_DOMAIN 0x1019
  SO_TYPE: 0x1008, SO_DOMAIN: 0x1019, SO_ACCEPTCONN: 0x2, SO_ERROR: 0x1007, SO_SNDBUF: 0x1001, SO_RCVBUF: 0x1002, SO_REUSEADDR: 0x4,
  // libc-fbsdl: LOCAL_PEERCRED 1. The option level is 0: fbsd lib/libc/gen/getpeereid.c calls
  // getsockopt(s, 0, LOCAL_PEERCRED, &xuc, ...). FreeBSD has no LOCAL_PEERPID (xucred carries cr_pid
  // since FreeBSD 13 instead): -1
  SOL_LOCAL: 0, LOCAL_PEERCRED: 1, LOCAL_PEERPID: -1,
  // fbsd socket.h: MSG_TRUNC 0x10, MSG_CTRUNC 0x20, MSG_DONTWAIT 0x80, MSG_PEEK 0x2,
  // MSG_NOSIGNAL 0x20000, MSG_CMSG_CLOEXEC 0x40000
  MSG_CTRUNC: 0x20, MSG_TRUNC: 0x10, MSG_DONTWAIT: 0x80, MSG_NOSIGNAL: 0x20000, MSG_CMSG_CLOEXEC: 0x40000, MSG_PEEK: 0x2,
  // libc-fbsdl: F_GETFD 1, F_SETFD 2, F_GETFL 3, F_SETFL 4, F_DUPFD_CLOEXEC 17; FD_CLOEXEC 1 (sys/fcntl.h)
  F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, F_DUPFD_CLOEXEC: 17, FD_CLOEXEC: 1,
  // libc-bsd: O_NONBLOCK 0x4, O_RDONLY 0, O_WRONLY 1, O_RDWR 2; libc-fbsd: O_CLOEXEC 0x00100000
  O_NONBLOCK: 0x4, O_CLOEXEC: 0x00100000, O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2,
  // sys/filio.h: FIOCLEX _IO('f', 1), FIONBIO _IOW('f', 126, int); libc-bsd: 0x20006601 / 0x8004667e
  FIOCLEX: 0x20006601, FIONBIO: 0x8004667e,
  // libc-fbsdl: RLIMIT_NOFILE 8
  RLIMIT_NOFILE: 8,
  // fbsd socket.h: SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2
  SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2,
  // libc-bsd: POLLIN 0x1, POLLOUT 0x4, POLLERR 0x8, POLLHUP 0x10, POLLNVAL 0x20
  POLLIN: 0x1, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20,
  // No epoll in the base system (only the Linuxulator): 0. FreeBSD 13 does have eventfd(2), but the
  // reactor here is kqueue, so EFD_* stay 0 like the other "absent" entries.
  EPOLL_CLOEXEC: 0, EPOLL_CTL_ADD: 0, EPOLL_CTL_DEL: 0, EPOLL_CTL_MOD: 0,
  EPOLLIN: 0, EPOLLOUT: 0, EPOLLERR: 0, EPOLLHUP: 0, EPOLLRDHUP: 0, EPOLLONESHOT: 0, EPOLLET: 0,
  EFD_CLOEXEC: 0, EFD_NONBLOCK: 0,
  // fbsd event.h (and libc-fbsd): EVFILT_READ (-1), EVFILT_WRITE (-2), EVFILT_USER (-11)
  EVFILT_READ: -1, EVFILT_WRITE: -2, EVFILT_USER: -11,
  // fbsd event.h (and libc-fbsd): EV_ADD 0x1, EV_DELETE 0x2, EV_ENABLE 0x4, EV_DISABLE 0x8,
  // EV_ONESHOT 0x10, EV_CLEAR 0x20, EV_EOF 0x8000, EV_ERROR 0x4000; NOTE_TRIGGER 0x01000000
  EV_ADD: 0x1, EV_DELETE: 0x2, EV_ENABLE: 0x4, EV_DISABLE: 0x8,
  EV_ONESHOT: 0x10, EV_CLEAR: 0x20, EV_EOF: 0x8000, EV_ERROR: 0x4000, NOTE_TRIGGER: 0x01000000,
  // libc-fbsdl: SIGKILL 9, SIGPIPE 13, SIGTERM 15; SIG_DFL ((__sighandler_t *)0)
  SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13, SIG_DFL: 0,
};

// libc-fbsdl errno list (= fbsd sys/sys/errno.h). Same BSD numbering as darwin except EOPNOTSUPP,
// which is 45 here (ENOTSUP == EOPNOTSUPP on FreeBSD).
export const freebsdErrno: Readonly<Record<ErrnoName, number>> = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, ENOMEM: 12, EACCES: 13, EFAULT: 14, EEXIST: 17,
  ENOTDIR: 20, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOSPC: 28, EPIPE: 32, ERANGE: 34,
  EAGAIN: 35, EINPROGRESS: 36, EALREADY: 37, ENOTSOCK: 38, EDESTADDRREQ: 39, EMSGSIZE: 40,
  EPROTOTYPE: 41, ENOPROTOOPT: 42, EPROTONOSUPPORT: 43, EOPNOTSUPP: 45, EAFNOSUPPORT: 47,
  EADDRINUSE: 48, EADDRNOTAVAIL: 49, ENETDOWN: 50, ECONNABORTED: 53, ECONNRESET: 54, ENOBUFS: 55,
  EISCONN: 56, ENOTCONN: 57, ETOOMANYREFS: 59, ETIMEDOUT: 60, ECONNREFUSED: 61, ENAMETOOLONG: 63,
  ENOSYS: 78,
};

// fbsd sys/sys/errno.h, 1..ELAST = 97 (libc-fbsdl / libc-fbsd list the same values; EINTEGRITY 97 since
// FreeBSD 13). EAGAIN 35 (EWOULDBLOCK alias), EOPNOTSUPP 45 (ENOTSUP alias).
export const freebsdErrnoNames: Readonly<Record<number, string>> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
  9: "EBADF", 10: "ECHILD", 11: "EDEADLK", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
  16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
  23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
  30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM", 34: "ERANGE", 35: "EAGAIN", 36: "EINPROGRESS",
  37: "EALREADY", 38: "ENOTSOCK", 39: "EDESTADDRREQ", 40: "EMSGSIZE", 41: "EPROTOTYPE", 42: "ENOPROTOOPT",
  43: "EPROTONOSUPPORT", 44: "ESOCKTNOSUPPORT", 45: "EOPNOTSUPP", 46: "EPFNOSUPPORT", 47: "EAFNOSUPPORT",
  48: "EADDRINUSE", 49: "EADDRNOTAVAIL", 50: "ENETDOWN", 51: "ENETUNREACH", 52: "ENETRESET",
  53: "ECONNABORTED", 54: "ECONNRESET", 55: "ENOBUFS", 56: "EISCONN", 57: "ENOTCONN", 58: "ESHUTDOWN",
  59: "ETOOMANYREFS", 60: "ETIMEDOUT", 61: "ECONNREFUSED", 62: "ELOOP", 63: "ENAMETOOLONG", 64: "EHOSTDOWN",
  65: "EHOSTUNREACH", 66: "ENOTEMPTY", 67: "EPROCLIM", 68: "EUSERS", 69: "EDQUOT", 70: "ESTALE",
  71: "EREMOTE", 72: "EBADRPC", 73: "ERPCMISMATCH", 74: "EPROGUNAVAIL", 75: "EPROGMISMATCH",
  76: "EPROCUNAVAIL", 77: "ENOLCK", 78: "ENOSYS", 79: "EFTYPE", 80: "EAUTH", 81: "ENEEDAUTH", 82: "EIDRM",
  83: "ENOMSG", 84: "EOVERFLOW", 85: "ECANCELED", 86: "EILSEQ", 87: "ENOATTR", 88: "EDOOFUS", 89: "EBADMSG",
  90: "EMULTIHOP", 91: "ENOLINK", 92: "EPROTO", 93: "ENOTCAPABLE", 94: "ECAPMODE", 95: "ENOTRECOVERABLE",
  96: "EOWNERDEAD", 97: "EINTEGRITY",
};

export const abi: Abi = {
  name: "freebsd-x64",
  os: "freebsd",
  arch: "x64",
  libc: "freebsd",
  // FreeBSD's libc soname (libc.so.7 since FreeBSD 7; a bare soname, as abi.ts requires).
  // UNVERIFIED: not dlopen-ed here (no FreeBSD host).
  libName: "libc.so.7",
  // fbsd sys/sys/errno.h: `int * __error(void); #define errno (* __error())`
  errnoSymbol: "__error",
  pointerSize: 8,
  littleEndian: true,
  // fbsd socket.h struct msghdr: void *msg_name @0; socklen_t msg_namelen @8; struct iovec *msg_iov @16;
  // int msg_iovlen @24; void *msg_control @32; socklen_t msg_controllen @40; int msg_flags @44; 48 bytes
  // (libc-bsd msghdr: same types)
  msghdr: {
    size: 48,
    name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
    iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 4 },
    control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 4 },
    flags: { offset: 44, size: 4 },
  },
  // struct iovec { void *iov_base; size_t iov_len; }: 16 bytes on LP64
  iovec: { size: 16, base: { offset: 0, size: 8 }, len: { offset: 8, size: 8 } },
  // fbsd socket.h struct cmsghdr { socklen_t cmsg_len; int cmsg_level; int cmsg_type; }: 12 bytes, but
  // CMSG_LEN(l) = _ALIGN(sizeof(struct cmsghdr)) + l and CMSG_SPACE(l) = _ALIGN(12) + _ALIGN(l), with
  // fbsd sys/x86/include/_align.h _ALIGNBYTES = sizeof(register_t) - 1 = 7 on amd64: so
  // CMSG_LEN(0) = 16 and the alignment quantum is 8 (docs/design.md, "Wire format": rights(1) = 24, rights(253) = 1032).
  cmsg: { headerSize: 12, headerLen: 16, align: 8, len: { offset: 0, size: 4 }, level: { offset: 4, size: 4 }, type: { offset: 8, size: 4 } },
  ucred: null,
  // fbsd ucred.h struct xucred { u_int cr_version @0; uid_t cr_uid @4; short cr_ngroups @8;
  // gid_t cr_groups[XU_NGROUPS=16] @12; union { void *_cr_unused1; pid_t cr_pid; } @80 }:
  // 76 bytes of fields, the pointer-sized union aligned to 8 at 80, total 88 (libc-fbsd XU_NGROUPS 16).
  // `groups` describes one element (4 bytes); the array holds 16.
  // cr_pid is the int in the low half of that union (little-endian): LOCAL_PEERCRED fills it with the
  // peer's pid from FreeBSD 13 on; older kernels leave the unused pointer 0, read as "no pid".
  xucred: { size: 88, version: { offset: 0, size: 4 }, uid: { offset: 4, size: 4 }, ngroups: { offset: 8, size: 2 }, groups: { offset: 12, size: 4 }, pid: { offset: 80, size: 4 } },
  // struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; }, rlim_t = __int64_t (signed, values positive);
  // libc-fbsdl: RLIM_INFINITY 0x7fff_ffff_ffff_ffff
  rlimit: { size: 16, cur: { offset: 0, size: 8 }, max: { offset: 8, size: 8 }, infinity: 0x7fff_ffff_ffff_ffffn },
  // struct timeval (FreeBSD amd64: time_t tv_sec @0, suseconds_t (long) tv_usec @8; 16 bytes); microseconds read from the low 4 bytes
  timeval: { size: 16, sec: { offset: 0, size: 8 }, usec: { offset: 8, size: 4 } },
  timespec: null,
  // fbsd sys/sys/un.h and libc-bsd: struct sockaddr_un { u_char sun_len; u_char sun_family;
  // char sun_path[104]; } = 106 bytes; no abstract namespace
  sockaddrUn: { size: 106, len: { offset: 0, size: 1 }, family: { offset: 1, size: 1 }, pathOffset: 2, pathSize: 104, abstractNamespace: false },
  // netinet/in.h (BSD 4.4 layout, libc freebsdlike sockaddr_in): sin_len u8 @0, sin_family u8 @1,
  // sin_port @2, sin_addr @4, sin_zero[8]: 16 bytes
  sockaddrIn: { size: 16, family: { offset: 1, size: 1 }, port: 2, addr: 4 },
  // libc-bsd sockaddr_in6: sin6_len u8 @0, sin6_family u8 @1, sin6_port @2, sin6_flowinfo @4,
  // sin6_addr @8, sin6_scope_id @24: 28 bytes
  sockaddrIn6: { size: 28, family: { offset: 1, size: 1 }, port: 2, addr: 8 },
  epollEvent: null,
  // fbsd event.h (FreeBSD >= 12): struct kevent { __uintptr_t ident @0; short filter @8;
  // unsigned short flags @10; unsigned int fflags @12; __int64_t data @16; void *udata @24;
  // __uint64_t ext[4] @32 }: 64 bytes. (FreeBSD 11's kevent was 32 bytes, kept as kevent_freebsd11
  // for old binaries; a table for FreeBSD <= 11 would differ here.)
  kevent: {
    size: 64,
    ident: { offset: 0, size: 8 }, filter: { offset: 8, size: 2 }, flags: { offset: 10, size: 2 },
    fflags: { offset: 12, size: 4 }, data: { offset: 16, size: 8 }, udata: { offset: 24, size: 8 },
  },
  // struct pollfd { int fd; short events; short revents; }: 8 bytes (POSIX)
  pollfd: { size: 8, fd: { offset: 0, size: 4 }, events: { offset: 4, size: 2 }, revents: { offset: 6, size: 2 } },
  // docs/design.md, "Platform strategies": FreeBSD gets MSG_CMSG_CLOEXEC (atomic, kernel) and MSG_NOSIGNAL
  cloexec: "msg_cmsg_cloexec",
  sigpipe: "msg_nosignal",
  // docs/design.md, "Platform strategies": a fixed 253 "budget" on the BSDs (not a claim about the kernel's maximum)
  fdBudget: { kind: "fixed", fds: 253 },
  // FreeBSD has no SCM_MAX_FD; 253 is the crate's per-message budget, reused as the send limit so one
  // message is the same size everywhere (CMSG_SPACE(1012) = 1032 bytes).
  maxFdsPerSend: 253,
  maxSendControlBytes: null,
  // No SCM_CREDENTIALS (FreeBSD's SCM_CREDS is only sent when the sender asks, with struct cmsgcred)
  passCredentials: false,
  // accept4(2) and SOCK_CLOEXEC/SOCK_NONBLOCK exist since FreeBSD 10.0 (fbsd socket.h above)
  hasAccept4: true,
  hasSockFlags: true,
  // fbsd sys/kern/uipc_usrreq.c registers `seqpacketproto` (.pr_type = SOCK_SEQPACKET, PR_RIGHTS) for
  // the local domain (present since FreeBSD 8.0)
  hasSeqpacket: true,
  constants: freebsdConstants,
  errno: freebsdErrno,
  errnoNames: freebsdErrnoNames,
};
