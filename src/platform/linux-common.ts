/**
 * Kernel ABI shared by the four Linux tables (x86_64 and aarch64 use the same socket, MSG_*, F_*, errno
 * and RLIMIT numbers; aarch64 takes them from asm-generic, x86_64 from its own headers, and they agree
 * for every value below). Sources: docs/design.md, "Per-ABI facts" (printed by a C program on x86_64 glibc 2.36),
 * docs/design.md, "Per-ABI facts" (re-run on aarch64 and musl), and the Rust libc crate src/unix/linux_like/linux/mod.rs +
 * arch/generic/mod.rs. Only linux-*.ts files import this.
 */
import type { AbiConstants, ErrnoName } from "./abi.ts";

export const linuxConstants: AbiConstants = {
  AF_UNIX: 1, AF_INET: 2, AF_INET6: 10,
  SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_SEQPACKET: 5,
  SOCK_NONBLOCK: 0x800, SOCK_CLOEXEC: 0x80000,
  SOL_SOCKET: 1, SCM_RIGHTS: 1, SCM_CREDENTIALS: 2,
  SO_PASSCRED: 16, SO_PEERCRED: 17,
  // include/uapi/asm-generic/socket.h (Linux 6.16): #define SO_PASSRIGHTS 83
  SO_PASSRIGHTS: 83,
  SO_NOSIGPIPE: -1,
  // include/uapi/asm-generic/socket.h (Linux 6.5): SO_PASSPIDFD 76, SO_PEERPIDFD 77;
  // include/linux/socket.h: SCM_PIDFD 0x04
  SO_PASSPIDFD: 76, SO_PEERPIDFD: 77, SCM_PIDFD: 4,
  // include/uapi/asm-generic/socket.h (x86_64 includes it too): SO_TIMESTAMP_OLD 29, SO_TIMESTAMPNS_OLD 35,
  // SO_TIMESTAMP_NEW 63, SO_TIMESTAMPNS_NEW 64; each SCM_* equals its SO_*. 64-bit libcs map SO_TIMESTAMP
  // to the _OLD number, whose payload (struct timeval / timespec, 16 bytes) equals the _NEW one here.
  SO_TIMESTAMP: 29, SCM_TIMESTAMP: 29, SO_TIMESTAMPNS: 35, SCM_TIMESTAMPNS: 35,
  SO_TIMESTAMP_NEW: 63, SCM_TIMESTAMP_NEW: 63, SO_TIMESTAMPNS_NEW: 64, SCM_TIMESTAMPNS_NEW: 64,
  SO_TYPE: 3, SO_DOMAIN: 39, SO_ACCEPTCONN: 30, SO_ERROR: 4, SO_SNDBUF: 7, SO_RCVBUF: 8, SO_REUSEADDR: 2,
  SOL_LOCAL: -1, LOCAL_PEERCRED: -1, LOCAL_PEERPID: -1,
  MSG_CTRUNC: 0x8, MSG_TRUNC: 0x20, MSG_DONTWAIT: 0x40, MSG_NOSIGNAL: 0x4000, MSG_CMSG_CLOEXEC: 0x40000000, MSG_PEEK: 0x2,
  F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, F_DUPFD_CLOEXEC: 1030, FD_CLOEXEC: 1,
  O_NONBLOCK: 0x800, O_CLOEXEC: 0x80000, O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2,
  // asm-generic/ioctls.h: FIOCLEX 0x5451, FIONBIO 0x5421 (x86_64 and aarch64 alike)
  FIOCLEX: 0x5451, FIONBIO: 0x5421,
  RLIMIT_NOFILE: 7,
  SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2,
  POLLIN: 0x1, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20,
  EPOLL_CLOEXEC: 0x80000, EPOLL_CTL_ADD: 1, EPOLL_CTL_DEL: 2, EPOLL_CTL_MOD: 3,
  EPOLLIN: 0x1, EPOLLOUT: 0x4, EPOLLERR: 0x8, EPOLLHUP: 0x10, EPOLLRDHUP: 0x2000, EPOLLONESHOT: 0x40000000, EPOLLET: 0x80000000,
  EFD_CLOEXEC: 0x80000, EFD_NONBLOCK: 0x800,
  EVFILT_READ: 0, EVFILT_WRITE: 0, EVFILT_USER: 0, EV_ADD: 0, EV_DELETE: 0, EV_ENABLE: 0, EV_DISABLE: 0,
  EV_ONESHOT: 0, EV_CLEAR: 0, EV_EOF: 0, EV_ERROR: 0, NOTE_TRIGGER: 0,
  SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13, SIG_DFL: 0,
};

export const linuxErrno: Readonly<Record<ErrnoName, number>> = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, EEXIST: 17,
  ENOTDIR: 20, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOSPC: 28, EPIPE: 32, ERANGE: 34, ENOSYS: 38,
  ENAMETOOLONG: 36, ENOTSOCK: 88, EDESTADDRREQ: 89, EMSGSIZE: 90, EPROTOTYPE: 91, ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93, EOPNOTSUPP: 95, EAFNOSUPPORT: 97, EADDRINUSE: 98, EADDRNOTAVAIL: 99, ENETDOWN: 100,
  ECONNABORTED: 103, ECONNRESET: 104, ENOBUFS: 105, EISCONN: 106, ENOTCONN: 107, ETOOMANYREFS: 109,
  ETIMEDOUT: 110, ECONNREFUSED: 111, EALREADY: 114, EINPROGRESS: 115,
};

/**
 * Every Linux errno, from include/uapi/asm-generic/errno-base.h and errno.h (x86_64 and aarch64 both
 * use these). 41 and 58 are unassigned there: EWOULDBLOCK and EDEADLOCK are aliases of EAGAIN (11) and
 * EDEADLK (35); ENOTSUP is glibc's and musl's alias of EOPNOTSUPP (95).
 */
export const linuxErrnoNames: Readonly<Record<number, string>> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
  9: "EBADF", 10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
  16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
  23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
  30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM", 34: "ERANGE", 35: "EDEADLK", 36: "ENAMETOOLONG",
  37: "ENOLCK", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 42: "ENOMSG", 43: "EIDRM", 44: "ECHRNG",
  45: "EL2NSYNC", 46: "EL3HLT", 47: "EL3RST", 48: "ELNRNG", 49: "EUNATCH", 50: "ENOCSI", 51: "EL2HLT",
  52: "EBADE", 53: "EBADR", 54: "EXFULL", 55: "ENOANO", 56: "EBADRQC", 57: "EBADSLT", 59: "EBFONT",
  60: "ENOSTR", 61: "ENODATA", 62: "ETIME", 63: "ENOSR", 64: "ENONET", 65: "ENOPKG", 66: "EREMOTE",
  67: "ENOLINK", 68: "EADV", 69: "ESRMNT", 70: "ECOMM", 71: "EPROTO", 72: "EMULTIHOP", 73: "EDOTDOT",
  74: "EBADMSG", 75: "EOVERFLOW", 76: "ENOTUNIQ", 77: "EBADFD", 78: "EREMCHG", 79: "ELIBACC", 80: "ELIBBAD",
  81: "ELIBSCN", 82: "ELIBMAX", 83: "ELIBEXEC", 84: "EILSEQ", 85: "ERESTART", 86: "ESTRPIPE", 87: "EUSERS",
  88: "ENOTSOCK", 89: "EDESTADDRREQ", 90: "EMSGSIZE", 91: "EPROTOTYPE", 92: "ENOPROTOOPT",
  93: "EPROTONOSUPPORT", 94: "ESOCKTNOSUPPORT", 95: "EOPNOTSUPP", 96: "EPFNOSUPPORT", 97: "EAFNOSUPPORT",
  98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH", 102: "ENETRESET",
  103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS", 106: "EISCONN", 107: "ENOTCONN", 108: "ESHUTDOWN",
  109: "ETOOMANYREFS", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 112: "EHOSTDOWN", 113: "EHOSTUNREACH",
  114: "EALREADY", 115: "EINPROGRESS", 116: "ESTALE", 117: "EUCLEAN", 118: "ENOTNAM", 119: "ENAVAIL",
  120: "EISNAM", 121: "EREMOTEIO", 122: "EDQUOT", 123: "ENOMEDIUM", 124: "EMEDIUMTYPE", 125: "ECANCELED",
  126: "ENOKEY", 127: "EKEYEXPIRED", 128: "EKEYREVOKED", 129: "EKEYREJECTED", 130: "EOWNERDEAD",
  131: "ENOTRECOVERABLE", 132: "ERFKILL", 133: "EHWPOISON",
};

/** Layouts common to LP64 Linux (glibc writes 8-byte length fields; musl 4 + zero pad: see musl tables). */
export const linuxStructs = {
  iovec: { size: 16, base: { offset: 0, size: 8 }, len: { offset: 8, size: 8 } },
  ucred: { size: 12, pid: { offset: 0, size: 4 }, uid: { offset: 4, size: 4 }, gid: { offset: 8, size: 4 } },
  rlimit: { size: 16, cur: { offset: 0, size: 8 }, max: { offset: 8, size: 8 }, infinity: 0xffff_ffff_ffff_ffffn },
  // struct timeval / timespec on LP64 Linux: two longs (sec @0, usec / nsec @8), 16 bytes
  timeval: { size: 16, sec: { offset: 0, size: 8 }, usec: { offset: 8, size: 4 } },
  timespec: { size: 16, sec: { offset: 0, size: 8 }, nsec: { offset: 8, size: 4 } },
  sockaddrUn: { size: 110, len: null, family: { offset: 0, size: 2 }, pathOffset: 2, pathSize: 108, abstractNamespace: true },
  sockaddrIn: { size: 16, family: { offset: 0, size: 2 }, port: 2, addr: 4 },
  sockaddrIn6: { size: 28, family: { offset: 0, size: 2 }, port: 2, addr: 8 },
  pollfd: { size: 8, fd: { offset: 0, size: 4 }, events: { offset: 4, size: 2 }, revents: { offset: 6, size: 2 } },
} as const;

/** Everything the four Linux tables share, so each file states only what differs. */
export const linuxShared = {
  os: "linux",
  pointerSize: 8,
  littleEndian: true,
  errnoSymbol: "__errno_location",
  ...linuxStructs,
  xucred: null,
  kevent: null,
  cloexec: "msg_cmsg_cloexec",
  sigpipe: "msg_nosignal",
  // SCM_MAX_FD in include/net/scm.h; docs/design.md, "Limits and truncation": 254 fds -> EINVAL
  fdBudget: { kind: "fixed", fds: 253 },
  maxFdsPerSend: 253,
  passCredentials: true,
  hasAccept4: true,
  hasSockFlags: true,
  hasSeqpacket: true,
  constants: linuxConstants,
  errno: linuxErrno,
  errnoNames: linuxErrnoNames,
} as const;

/**
 * glibc: sizeof(struct msghdr)=56 with size_t msg_iovlen/msg_controllen; sizeof(struct cmsghdr)=16
 * with size_t cmsg_len @0, level @8, type @12; CMSG_LEN(0)=16, CMSG_SPACE(1)-CMSG_SPACE(0)=8
 * (docs/design.md, "Per-ABI facts", printed by a C program on x86_64; docs/design.md, "Per-ABI facts", re-run on aarch64).
 */
export const gnuLayout = {
  msghdr: {
    size: 56,
    name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
    iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 8 },
    control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 8 },
    flags: { offset: 48, size: 4 },
  },
  cmsg: { headerSize: 16, headerLen: 16, align: 8, len: { offset: 0, size: 8 }, level: { offset: 8, size: 4 }, type: { offset: 12, size: 4 } },
  maxSendControlBytes: null,
} as const;

/**
 * musl: the same offsets, but msg_iovlen is an int, msg_controllen and cmsg_len are socklen_t, each
 * followed by 4 bytes of padding (musl include/sys/socket.h; docs/design.md, "Per-ABI facts", measured on musl 1.2.3). We write
 * 4 bytes and keep the pads zero. musl's 64-bit sendmsg copies control data into a fixed stack array
 * and fails with ENOMEM above 1024 bytes (musl 1.2.3, docs/design.md, "Per-ABI facts"): one message carries at most 252 fds.
 */
export const muslLayout = {
  msghdr: {
    size: 56,
    name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
    iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 4 },
    control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 4 },
    flags: { offset: 48, size: 4 },
  },
  cmsg: { headerSize: 16, headerLen: 16, align: 8, len: { offset: 0, size: 4 }, level: { offset: 8, size: 4 }, type: { offset: 12, size: 4 } },
  maxSendControlBytes: 1024,
  maxFdsPerSend: 252,
} as const;

/** struct epoll_event: packed (12 bytes, data @4) on x86_64 for both libcs; 16 bytes (data @8) on aarch64. */
export const epollX64 = { size: 12, events: { offset: 0, size: 4 }, data: { offset: 4, size: 8 } } as const;
export const epollArm64 = { size: 16, events: { offset: 0, size: 4 }, data: { offset: 8, size: 8 } } as const;
