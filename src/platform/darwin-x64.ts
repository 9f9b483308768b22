/**
 * macOS (Darwin) x86_64. These tables cannot be run here: every value was checked against a public
 * source, named next to it. Abbreviations used in the comments:
 *   xnu:      apple-oss-distributions/xnu (bsd/sys/socket.h, errno.h, fcntl.h, filio.h, event.h,
 *             resource.h, ucred.h); xnu-un.h: bsd/sys/un.h (ProjectCalamari/xnu mirror; apple/darwin-xnu
 *             has the same sockaddr_un); xnu-uipc: bsd/kern/uipc_proto.c (ProjectCalamari/xnu mirror).
 *   libc-bsd: rust-lang/libc src/unix/bsd/mod.rs (shared by Apple and the BSDs).
 * Everything except `name`/`arch` is identical on arm64 (both LP64 little-endian; no struct below has an
 * arch-dependent member), so darwin-arm64.ts spreads `darwinShared` from this file.
 * Not a layout fact but worth repeating (bun-facts Q8): on darwin-arm64 variadic arguments go on the
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
  // a fact only: the library's sigpipe strategy here is so_nosigpipe (crate spec §3.1; older SDKs/kernels
  // lack the flag, bun-facts Q8), so nothing should pass this flag on darwin.
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
  EPOLLIN: 0, EPOLLOUT: 0, EPOLLERR: 0, EPOLLHUP: 0, EPOLLRDHUP: 0, EPOLLONESHOT: 0,
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
  // __DARWIN_ALIGN32(l), so the alignment quantum is 4 and CMSG_SPACE(4) = 16 (crate spec §2.1).
  cmsg: { headerSize: 12, headerLen: 12, align: 4, len: { offset: 0, size: 4 }, level: { offset: 4, size: 4 }, type: { offset: 8, size: 4 } },
  // No struct ucred for userland (SCM_CREDENTIALS is Linux-only)
  ucred: null,
  // xnu ucred.h struct xucred { u_int cr_version @0; uid_t cr_uid @4; short cr_ngroups @8;
  // gid_t cr_groups[NGROUPS=16] @12 }: 12 + 64 = 76 bytes, no trailing pointer on Apple (unlike FreeBSD).
  // `groups` describes one element (4 bytes); the array holds 16.
  xucred: { size: 76, version: { offset: 0, size: 4 }, uid: { offset: 4, size: 4 }, ngroups: { offset: 8, size: 2 }, groups: { offset: 12, size: 4 } },
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
  // on arm64, bun-facts Q8; known fork/exec race, crate spec §3.2)
  cloexec: "ioctl_fioclex",
  // crate spec §3.1: setsockopt(SOL_SOCKET, SO_NOSIGPIPE, 1) before every send
  sigpipe: "so_nosigpipe",
  // crate spec §3.3: clamp(RLIMIT_NOFILE soft limit, 253, 2^20), queried on every receive
  fdBudget: { kind: "rlimit", floor: 253, ceiling: 1048576 },
  // Darwin has no SCM_MAX_FD. 253 keeps one send within the crate's budget floor and the same count as
  // Linux, and its control data (CMSG_SPACE(1012) = 1024 bytes) stays well under the 2048-byte MCLBYTES
  // mbuf cluster that BSD-derived kernels copy control data into. UNVERIFIED: the exact xnu per-send fd
  // limit was not found in a source.
  maxFdsPerSend: 253,
  maxSendControlBytes: null,
  // No SCM_CREDENTIALS/SO_PASSCRED: the kernel never attaches credentials to a receive
  passCredentials: false,
  // No accept4/pipe2 and no SOCK_NONBLOCK/SOCK_CLOEXEC in xnu (bun-facts Q8)
  hasAccept4: false,
  hasSockFlags: false,
  // xnu-uipc: localsw[] registers only SOCK_STREAM and SOCK_DGRAM for PF_LOCAL, so
  // socket(AF_UNIX, SOCK_SEQPACKET, 0) fails (no protosw for that type)
  hasSeqpacket: false,
  constants: darwinConstants,
  errno: darwinErrno,
} as const;

export const abi: Abi = {
  ...darwinShared,
  name: "darwin-x64",
  arch: "x64",
};
