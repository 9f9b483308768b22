/**
 * macOS (Darwin) x86_64. These tables cannot be run here: every value was checked against a public
 * source, named next to it. Abbreviations used in the comments:
 *   xnu:      apple-oss-distributions/xnu (bsd/sys/socket.h, errno.h, fcntl.h, filio.h, event.h,
 *             resource.h, ucred.h); xnu-un.h: bsd/sys/un.h (ProjectCalamari/xnu mirror; apple/darwin-xnu
 *             has the same sockaddr_un); xnu-uipc: bsd/kern/uipc_proto.c (ProjectCalamari/xnu mirror).
 *   libc-bsd: rust-lang/libc src/unix/bsd/mod.rs (shared by Apple and the BSDs).
 * Everything except `name`/`arch` is identical on arm64 (both LP64 little-endian; no struct below has an
 * arch-dependent member), so darwin-arm64.ts spreads `darwinShared` from this file.
 * Not a layout fact but worth repeating (docs/design.md, "Per-ABI facts"): on darwin-arm64 variadic arguments go on the
 * stack, which is why CLOEXEC uses the non-variadic-safe ioctl(FIOCLEX) strategy on both darwin ABIs.
 */
import type { AbiConstants, ErrnoName } from "./abi.ts";
import type { Abi } from "./abi.ts";

export const darwinConstants: AbiConstants = {
  // xnu socket.h: AF_UNIX 1, AF_INET 2, AF_INET6 30
  AF_UNIX: 1, AF_INET: 2, AF_INET6: 30,
  // xnu socket.h: SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5 (the constant exists; AF_UNIX has no
  // SEQPACKET protocol, see hasSeqpacket)
  SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_SEQPACKET: 5,
  // No SOCK_NONBLOCK/SOCK_CLOEXEC type flags in xnu socket.h: 0 = "set with fcntl/ioctl after socket()"
  SOCK_NONBLOCK: 0, SOCK_CLOEXEC: 0,
  // xnu socket.h: SOL_SOCKET 0xffff; SCM_RIGHTS 0x01 (SCM_CREDS 0x03 is a different struct, not used)
  SOL_SOCKET: 0xffff, SCM_RIGHTS: 1,
  // Linux-only: no SCM_CREDENTIALS / SO_PASSCRED / SO_PEERCRED / SO_PASSRIGHTS in xnu socket.h
  SCM_CREDENTIALS: -1, SO_PASSCRED: -1, SO_PEERCRED: -1, SO_PASSRIGHTS: -1,
  // xnu socket.h: SO_NOSIGPIPE 0x1022 "APPLE: No SIGPIPE on EPIPE"
  SO_NOSIGPIPE: 0x1022,
  // xnu socket.h: SO_TIMESTAMP 0x0400, SCM_TIMESTAMP 0x02 (struct timeval); no SO_TIMESTAMPNS / _NEW spellings
  SO_TIMESTAMP: 0x400, SCM_TIMESTAMP: 2, SO_TIMESTAMPNS: -1, SCM_TIMESTAMPNS: -1,
  SO_TIMESTAMP_NEW: -1, SCM_TIMESTAMP_NEW: -1, SO_TIMESTAMPNS_NEW: -1, SCM_TIMESTAMPNS_NEW: -1,
  // Linux-only pidfds: xnu has no SO_PASSPIDFD / SO_PEERPIDFD / SCM_PIDFD
  SO_PASSPIDFD: -1, SO_PEERPIDFD: -1, SCM_PIDFD: -1,
  // xnu socket.h: SO_TYPE 0x1008, SO_ACCEPTCONN 0x0002, SO_ERROR 0x1007, SO_SNDBUF 0x1001,
  // SO_RCVBUF 0x1002, SO_REUSEADDR 0x0004; there is no SO_DOMAIN (-1)
  SO_TYPE: 0x1008, SO_DOMAIN: -1, SO_ACCEPTCONN: 0x2, SO_ERROR: 0x1007, SO_SNDBUF: 0x1001, SO_RCVBUF: 0x1002, SO_REUSEADDR: 0x4,
  // xnu-un.h: SOL_LOCAL 0, LOCAL_PEERCRED 0x001, LOCAL_PEERPID 0x002
  SOL_LOCAL: 0, LOCAL_PEERCRED: 1, LOCAL_PEERPID: 2,
  // xnu socket.h: MSG_TRUNC 0x10, MSG_CTRUNC 0x20, MSG_DONTWAIT 0x80, MSG_PEEK 0x2
  MSG_CTRUNC: 0x20, MSG_TRUNC: 0x10, MSG_DONTWAIT: 0x80, MSG_PEEK: 0x2,
  // xnu socket.h (current): `#if __DARWIN_C_LEVEL >= 200809L #define MSG_NOSIGNAL 0x80000`. Recorded as
  // a fact only: the library's sigpipe strategy here is so_nosigpipe (docs/design.md, "Platform strategies"; older SDKs/kernels
  // lack the flag, docs/design.md, "Per-ABI facts"), so nothing should pass this flag on darwin.
  MSG_NOSIGNAL: 0x80000,
  // No MSG_CMSG_CLOEXEC in xnu socket.h: 0 (a no-op when OR-ed); cloexec strategy is ioctl_fioclex
  MSG_CMSG_CLOEXEC: 0,
  // xnu fcntl.h: F_GETFD 1, F_SETFD 2, F_GETFL 3, F_SETFL 4, F_DUPFD_CLOEXEC 67, FD_CLOEXEC 1
  F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, F_DUPFD_CLOEXEC: 67, FD_CLOEXEC: 1,
  // xnu fcntl.h: O_NONBLOCK 0x00000004, O_CLOEXEC 0x01000000, O_RDONLY 0, O_WRONLY 1, O_RDWR 2
  O_NONBLOCK: 0x4, O_CLOEXEC: 0x1000000, O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2,
  // xnu filio.h: FIOCLEX _IO('f', 1) = IOC_VOID 0x20000000 | 'f'<<8 | 1; FIONBIO _IOW('f', 126, int)
  // = IOC_IN 0x80000000 | 4<<16 | 'f'<<8 | 126. libc-bsd: FIOCLEX 0x20006601, FIONBIO 0x8004667e
  FIOCLEX: 0x20006601, FIONBIO: 0x8004667e,
  // xnu resource.h: RLIMIT_NOFILE 8
  RLIMIT_NOFILE: 8,
  // xnu socket.h: SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2
  SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2,
  // libc-bsd: POLLIN 0x1, POLLOUT 0x4, POLLERR 0x8, POLLHUP 0x10, POLLNVAL 0x20 (xnu bsd/sys/poll.h)
  POLLIN: 0x1, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20,
  // No epoll/eventfd on darwin: 0
  EPOLL_CLOEXEC: 0, EPOLL_CTL_ADD: 0, EPOLL_CTL_DEL: 0, EPOLL_CTL_MOD: 0,
  EPOLLIN: 0, EPOLLOUT: 0, EPOLLERR: 0, EPOLLHUP: 0, EPOLLRDHUP: 0, EPOLLONESHOT: 0, EPOLLET: 0,
  EFD_CLOEXEC: 0, EFD_NONBLOCK: 0,
  // xnu event.h: EVFILT_READ (-1), EVFILT_WRITE (-2), EVFILT_USER (-10)
  EVFILT_READ: -1, EVFILT_WRITE: -2, EVFILT_USER: -10,
  // xnu event.h: EV_ADD 0x0001, EV_DELETE 0x0002, EV_ENABLE 0x0004, EV_DISABLE 0x0008,
  // EV_ONESHOT 0x0010, EV_CLEAR 0x0020, EV_EOF 0x8000, EV_ERROR 0x4000; NOTE_TRIGGER 0x01000000
  EV_ADD: 0x1, EV_DELETE: 0x2, EV_ENABLE: 0x4, EV_DISABLE: 0x8,
  EV_ONESHOT: 0x10, EV_CLEAR: 0x20, EV_EOF: 0x8000, EV_ERROR: 0x4000, NOTE_TRIGGER: 0x01000000,
  // Traditional Unix numbers, identical in xnu bsd/sys/signal.h: SIGKILL 9, SIGPIPE 13, SIGTERM 15,
  // SIG_DFL (void (*)(int))0
  SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13, SIG_DFL: 0,
};

// xnu errno.h, every value read from the header. EOPNOTSUPP is 102 (the discrete value defined when
// __DARWIN_UNIX03, which 64-bit targets always are; the kernel returns 102), not ENOTSUP's 45.
export const darwinErrno: Readonly<Record<ErrnoName, number>> = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, ENOMEM: 12, EACCES: 13, EFAULT: 14, EEXIST: 17,
  ENOTDIR: 20, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOSPC: 28, EPIPE: 32, ERANGE: 34,
  EAGAIN: 35, EINPROGRESS: 36, EALREADY: 37, ENOTSOCK: 38, EDESTADDRREQ: 39, EMSGSIZE: 40,
  EPROTOTYPE: 41, ENOPROTOOPT: 42, EPROTONOSUPPORT: 43, EAFNOSUPPORT: 47, EADDRINUSE: 48,
  EADDRNOTAVAIL: 49, ENETDOWN: 50, ECONNABORTED: 53, ECONNRESET: 54, ENOBUFS: 55, EISCONN: 56,
  ENOTCONN: 57, ETOOMANYREFS: 59, ETIMEDOUT: 60, ECONNREFUSED: 61, ENAMETOOLONG: 63, ENOSYS: 78,
  EOPNOTSUPP: 102,
};

// xnu bsd/sys/errno.h, 1..ELAST (rust-lang/libc src/unix/bsd/apple/mod.rs lists the same values).
// EAGAIN 35 (EWOULDBLOCK is its alias); ENOTSUP 45 and EOPNOTSUPP 102 are distinct numbers on darwin.
// ENOTCAPABLE 107 is new (ELAST 107 in current xnu; 106 EQFULL before).
export const darwinErrnoNames: Readonly<Record<number, string>> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
  9: "EBADF", 10: "ECHILD", 11: "EDEADLK", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
  16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
  23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
  30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM", 34: "ERANGE", 35: "EAGAIN", 36: "EINPROGRESS",
  37: "EALREADY", 38: "ENOTSOCK", 39: "EDESTADDRREQ", 40: "EMSGSIZE", 41: "EPROTOTYPE", 42: "ENOPROTOOPT",
  43: "EPROTONOSUPPORT", 44: "ESOCKTNOSUPPORT", 45: "ENOTSUP", 46: "EPFNOSUPPORT", 47: "EAFNOSUPPORT",
  48: "EADDRINUSE", 49: "EADDRNOTAVAIL", 50: "ENETDOWN", 51: "ENETUNREACH", 52: "ENETRESET",
  53: "ECONNABORTED", 54: "ECONNRESET", 55: "ENOBUFS", 56: "EISCONN", 57: "ENOTCONN", 58: "ESHUTDOWN",
  59: "ETOOMANYREFS", 60: "ETIMEDOUT", 61: "ECONNREFUSED", 62: "ELOOP", 63: "ENAMETOOLONG", 64: "EHOSTDOWN",
  65: "EHOSTUNREACH", 66: "ENOTEMPTY", 67: "EPROCLIM", 68: "EUSERS", 69: "EDQUOT", 70: "ESTALE",
  71: "EREMOTE", 72: "EBADRPC", 73: "ERPCMISMATCH", 74: "EPROGUNAVAIL", 75: "EPROGMISMATCH",
  76: "EPROCUNAVAIL", 77: "ENOLCK", 78: "ENOSYS", 79: "EFTYPE", 80: "EAUTH", 81: "ENEEDAUTH", 82: "EPWROFF",
  83: "EDEVERR", 84: "EOVERFLOW", 85: "EBADEXEC", 86: "EBADARCH", 87: "ESHLIBVERS", 88: "EBADMACHO",
  89: "ECANCELED", 90: "EIDRM", 91: "ENOMSG", 92: "EILSEQ", 93: "ENOATTR", 94: "EBADMSG", 95: "EMULTIHOP",
  96: "ENODATA", 97: "ENOLINK", 98: "ENOSR", 99: "ENOSTR", 100: "EPROTO", 101: "ETIME", 102: "EOPNOTSUPP",
  103: "ENOPOLICY", 104: "ENOTRECOVERABLE", 105: "EOWNERDEAD", 106: "EQFULL", 107: "ENOTCAPABLE",
};

/** Everything the two darwin tables share (only name and arch differ). */
export const darwinShared = {
  os: "darwin",
  libc: "darwin",
  // libSystem is the C library on macOS (libc.dylib is a symlink to it). A bare install name: dyld
  // resolves it through the default fallback path /usr/lib, from the shared cache (the file is not on
  // disk since macOS 11). abi.ts forbids absolute paths, so "/usr/lib/libSystem.B.dylib" is not used.
  // UNVERIFIED: dlopen by leaf name not run on a Mac here.
  libName: "libSystem.B.dylib",
  // xnu errno.h: `extern int * __error(void); #define errno (*__error())`
  errnoSymbol: "__error",
  pointerSize: 8,
  littleEndian: true,
  // xnu socket.h struct msghdr: void *msg_name @0; socklen_t msg_namelen @8; struct iovec *msg_iov @16;
  // int msg_iovlen @24; void *msg_control @32; socklen_t msg_controllen @40; int msg_flags @44; 48 bytes.
  // libc-bsd msghdr has the same field types.
  msghdr: {
    size: 48,
    name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
    iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 4 },
    control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 4 },
    flags: { offset: 44, size: 4 },
  },
  // struct iovec { void *iov_base; size_t iov_len; }: 16 bytes on LP64
  iovec: { size: 16, base: { offset: 0, size: 8 }, len: { offset: 8, size: 8 } },
  // xnu socket.h struct cmsghdr { socklen_t cmsg_len; int cmsg_level; int cmsg_type; }: 12 bytes.
  // CMSG_LEN(l) = __DARWIN_ALIGN32(sizeof(struct cmsghdr)) + l = 12 + l; CMSG_SPACE(l) = 12 +
  // __DARWIN_ALIGN32(l), so the alignment quantum is 4 and CMSG_SPACE(4) = 16 (docs/design.md, "Wire format").
  cmsg: { headerSize: 12, headerLen: 12, align: 4, len: { offset: 0, size: 4 }, level: { offset: 4, size: 4 }, type: { offset: 8, size: 4 } },
  // No struct ucred for userland (SCM_CREDENTIALS is Linux-only)
  ucred: null,
  // xnu ucred.h struct xucred { u_int cr_version @0; uid_t cr_uid @4; short cr_ngroups @8;
  // gid_t cr_groups[NGROUPS=16] @12 }: 12 + 64 = 76 bytes, no trailing pointer on Apple (unlike FreeBSD).
  // `groups` describes one element (4 bytes); the array holds 16.
  xucred: { size: 76, version: { offset: 0, size: 4 }, uid: { offset: 4, size: 4 }, ngroups: { offset: 8, size: 2 }, groups: { offset: 12, size: 4 }, pid: null },
  // xnu resource.h: struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; } with rlim_t __uint64_t;
  // RLIM_INFINITY (((__uint64_t)1 << 63) - 1)
  rlimit: { size: 16, cur: { offset: 0, size: 8 }, max: { offset: 8, size: 8 }, infinity: 0x7fff_ffff_ffff_ffffn },
  // struct timeval (darwin: time_t tv_sec @0, __darwin_suseconds_t (int) tv_usec @8, padded to 16); microseconds read from the low 4 bytes
  timeval: { size: 16, sec: { offset: 0, size: 8 }, usec: { offset: 8, size: 4 } },
  timespec: null,
  // xnu-un.h struct sockaddr_un { unsigned char sun_len; sa_family_t sun_family (u8); char sun_path[104]; }
  // = 106 bytes; no abstract namespace on darwin
  sockaddrUn: { size: 106, len: { offset: 0, size: 1 }, family: { offset: 1, size: 1 }, pathOffset: 2, pathSize: 104, abstractNamespace: false },
  // netinet/in.h (BSD 4.4 layout; libc apple sockaddr_in): sin_len u8 @0, sin_family u8 @1, sin_port @2,
  // sin_addr @4, sin_zero[8] @8: 16 bytes
  sockaddrIn: { size: 16, family: { offset: 1, size: 1 }, port: 2, addr: 4 },
  // libc-bsd sockaddr_in6: sin6_len u8 @0, sin6_family u8 @1, sin6_port @2, sin6_flowinfo u32 @4,
  // sin6_addr @8 (16 bytes), sin6_scope_id u32 @24: 28 bytes
  sockaddrIn6: { size: 28, family: { offset: 1, size: 1 }, port: 2, addr: 8 },
  epollEvent: null,
  // xnu event.h, under #pragma pack(4): struct kevent { uintptr_t ident @0; int16_t filter @8;
  // uint16_t flags @10; uint32_t fflags @12; intptr_t data @16; void *udata @24 }: 32 bytes
  // (pack(4) changes nothing on LP64: every 8-byte member already sits at a multiple of 8)
  kevent: {
    size: 32,
    ident: { offset: 0, size: 8 }, filter: { offset: 8, size: 2 }, flags: { offset: 10, size: 2 },
    fflags: { offset: 12, size: 4 }, data: { offset: 16, size: 8 }, udata: { offset: 24, size: 8 },
  },
  // struct pollfd { int fd; short events; short revents; }: 8 bytes (POSIX; xnu bsd/sys/poll.h)
  pollfd: { size: 8, fd: { offset: 0, size: 4 }, events: { offset: 4, size: 2 }, revents: { offset: 6, size: 2 } },
  // No MSG_CMSG_CLOEXEC: set FD_CLOEXEC right after recvmsg with ioctl(fd, FIOCLEX) (non-variadic-safe
  // on arm64, docs/design.md, "Per-ABI facts"; known fork/exec race, docs/design.md, "Platform strategies")
  cloexec: "ioctl_fioclex",
  // docs/design.md, "Platform strategies": setsockopt(SOL_SOCKET, SO_NOSIGPIPE, 1) before every send
  sigpipe: "so_nosigpipe",
  // docs/design.md, "Platform strategies": clamp(RLIMIT_NOFILE soft limit, 253, 2^20), queried on every receive
  fdBudget: { kind: "rlimit", floor: 253, ceiling: 1048576 },
  // Darwin has no SCM_MAX_FD; the limit is the 2048-byte (MCLBYTES) mbuf cluster the control data is
  // copied into. On 64-bit xnu, unp_internalize (bsd/kern/uipc_usrreq.c) rewrites each 4-byte fd in
  // place as an 8-byte fileglob pointer after the 12-byte header ("a fileglob * is twice the size of an
  // fd"), so n fds occupy 12 + 8n bytes of the cluster: 253 fds need 2036 bytes, 254 need 2044, 255
  // would need 2052 > 2048. 253 fits (one under the maximum of 254) and is the same count as Linux;
  // the caller-visible control data for it is CMSG_SPACE(1012) = 1024 bytes.
  maxFdsPerSend: 253,
  maxSendControlBytes: null,
  // No SCM_CREDENTIALS/SO_PASSCRED: the kernel never attaches credentials to a receive
  passCredentials: false,
  // No accept4/pipe2 and no SOCK_NONBLOCK/SOCK_CLOEXEC in xnu (docs/design.md, "Per-ABI facts")
  hasAccept4: false,
  hasSockFlags: false,
  // xnu-uipc: localsw[] registers only SOCK_STREAM and SOCK_DGRAM for PF_LOCAL, so
  // socket(AF_UNIX, SOCK_SEQPACKET, 0) fails (no protosw for that type)
  hasSeqpacket: false,
  constants: darwinConstants,
  errno: darwinErrno,
  errnoNames: darwinErrnoNames,
} as const;

export const abi: Abi = {
  ...darwinShared,
  name: "darwin-x64",
  arch: "x64",
};
