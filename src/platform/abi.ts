/**
 * The shape of one ABI table. Every constant, struct size and field offset the library uses lives in
 * one of the per-ABI files next to this one (linux-x64-gnu.ts, darwin-arm64.ts, ...); no other file
 * hard-codes a number that differs between platforms. Each value in a table records where it was
 * verified (a header in a public repository, the Rust `libc` crate, or a C program run here).
 *
 * This file holds types only: no FFI, no side effects, safe to import from the pure codec.
 */

export type AbiName =
  | "linux-x64-gnu"
  | "linux-x64-musl"
  | "linux-arm64-gnu"
  | "linux-arm64-musl"
  | "darwin-x64"
  | "darwin-arm64"
  | "freebsd-x64";

/** A field inside a C struct: byte offset and width (width 4 or 8; musl's 4-byte length fields are 4). */
export interface Field {
  readonly offset: number;
  readonly size: 2 | 4 | 8;
}

export interface CmsgLayout {
  /** sizeof(struct cmsghdr): the parser stops when fewer bytes than this remain. */
  readonly headerSize: number;
  /** CMSG_LEN(0): offset of the payload from the start of a control message. */
  readonly headerLen: number;
  /** CMSG_SPACE(1) - CMSG_SPACE(0): the alignment quantum of control messages. */
  readonly align: number;
  readonly len: Field;
  readonly level: Field;
  readonly type: Field;
}

export interface MsghdrLayout {
  readonly size: number;
  readonly name: Field;
  readonly namelen: Field;
  readonly iov: Field;
  readonly iovlen: Field;
  readonly control: Field;
  readonly controllen: Field;
  readonly flags: Field;
}

export interface IovecLayout {
  readonly size: number;
  readonly base: Field;
  readonly len: Field;
}

/** How received fds get FD_CLOEXEC: atomically by the kernel, or by a non-variadic ioctl right after recvmsg. */
export type CloexecStrategy = "msg_cmsg_cloexec" | "ioctl_fioclex";
/** How a send avoids SIGPIPE: a per-call flag, or a socket option set before the send. */
export type SigpipeStrategy = "msg_nosignal" | "so_nosigpipe";
/** The per-receive fd budget: a fixed number, or clamp(RLIMIT_NOFILE soft limit, 253, 2^20) queried per receive. */
export type FdBudget = { readonly kind: "fixed"; readonly fds: number } | { readonly kind: "rlimit"; readonly floor: number; readonly ceiling: number };

export interface Abi {
  readonly name: AbiName;
  readonly os: "linux" | "darwin" | "freebsd";
  readonly arch: "x64" | "arm64";
  readonly libc: "glibc" | "musl" | "darwin" | "freebsd";
  /** The soname handed to dlopen. Never an absolute path (docs/design.md, "Per-ABI facts": a path can load a second libc). */
  readonly libName: string;
  /** The function returning the calling thread's errno address. */
  readonly errnoSymbol: "__errno_location" | "__error";
  /** Pointer width and endianness the tables assume (all supported ABIs are LP64 little-endian). */
  readonly pointerSize: 8;
  readonly littleEndian: true;

  readonly msghdr: MsghdrLayout;
  readonly iovec: IovecLayout;
  readonly cmsg: CmsgLayout;
  /** struct ucred (Linux SCM_CREDENTIALS / SO_PEERCRED) or null where the ABI has none. */
  readonly ucred: { readonly size: number; readonly pid: Field; readonly uid: Field; readonly gid: Field } | null;
  /**
   * struct xucred (darwin/freebsd LOCAL_PEERCRED) or null. `pid` is the kernel-filled cr_pid (FreeBSD
   * >= 13; 0 on older kernels) or null where the struct has none (darwin asks LOCAL_PEERPID instead).
   */
  readonly xucred: { readonly size: number; readonly version: Field; readonly uid: Field; readonly ngroups: Field; readonly groups: Field; readonly pid: Field | null } | null;
  readonly rlimit: { readonly size: number; readonly cur: Field; readonly max: Field; readonly infinity: bigint };
  /** struct timeval as SCM_TIMESTAMP carries it (seconds signed 64-bit; microseconds read from the low 4 bytes). */
  readonly timeval: { readonly size: number; readonly sec: Field; readonly usec: Field };
  /** struct timespec as SCM_TIMESTAMPNS carries it, or null where the ABI has no nanosecond receive timestamps. */
  readonly timespec: { readonly size: number; readonly sec: Field; readonly nsec: Field } | null;
  readonly sockaddrUn: {
    readonly size: number;
    /** sun_len byte (BSD-derived ABIs) or null. */
    readonly len: Field | null | { readonly offset: number; readonly size: 1 };
    readonly family: { readonly offset: number; readonly size: 1 | 2 };
    readonly pathOffset: number;
    readonly pathSize: number;
    /** Linux abstract namespace (leading NUL byte). */
    readonly abstractNamespace: boolean;
  };
  readonly sockaddrIn: { readonly size: number; readonly family: { readonly offset: number; readonly size: 1 | 2 }; readonly port: number; readonly addr: number };
  readonly sockaddrIn6: { readonly size: number; readonly family: { readonly offset: number; readonly size: 1 | 2 }; readonly port: number; readonly addr: number };
  /** struct epoll_event (Linux) or null: 12 bytes packed on x86_64, 16 on aarch64. */
  readonly epollEvent: { readonly size: number; readonly events: Field; readonly data: Field } | null;
  /** struct kevent (darwin/freebsd) or null. */
  readonly kevent: {
    readonly size: number;
    readonly ident: Field;
    readonly filter: Field;
    readonly flags: Field;
    readonly fflags: Field;
    readonly data: Field;
    readonly udata: Field;
  } | null;
  readonly pollfd: { readonly size: number; readonly fd: Field; readonly events: Field; readonly revents: Field };

  readonly cloexec: CloexecStrategy;
  readonly sigpipe: SigpipeStrategy;
  readonly fdBudget: FdBudget;
  /** Largest number of fds the kernel accepts in one sendmsg (Linux SCM_MAX_FD = 253). */
  readonly maxFdsPerSend: number;
  /** Largest msg_controllen libc's sendmsg accepts (musl 1.2.3: 1024), or null when only the kernel limits it. */
  readonly maxSendControlBytes: number | null;
  /** Whether the kernel attaches SCM_CREDENTIALS (SO_PASSCRED): receive buffers then reserve room for it. */
  readonly passCredentials: boolean;
  /** Whether accept4/pipe2/SOCK_CLOEXEC exist (not on darwin). */
  readonly hasAccept4: boolean;
  readonly hasSockFlags: boolean;
  /** Whether AF_UNIX SOCK_SEQPACKET is available. */
  readonly hasSeqpacket: boolean;

  readonly constants: AbiConstants;
  /** errno numbers by name, for the errors the library tests for. */
  readonly errno: Readonly<Record<ErrnoName, number>>;
  /**
   * Every errno the OS defines, number -> libc name (one name per number: EAGAIN, not its alias
   * EWOULDBLOCK). SystemError.code comes from here; a number not listed reads 'E<number>'.
   */
  readonly errnoNames: Readonly<Record<number, string>>;
}

export type ErrnoName =
  | "EPERM" | "ENOENT" | "EINTR" | "EIO" | "EBADF" | "EAGAIN" | "ENOMEM" | "EACCES" | "EFAULT" | "EEXIST"
  | "ENOTDIR" | "EINVAL" | "ENFILE" | "EMFILE" | "ENOSPC" | "EPIPE" | "ERANGE" | "ENOSYS" | "ENOTSOCK"
  | "EDESTADDRREQ" | "EMSGSIZE" | "EPROTOTYPE" | "ENOPROTOOPT" | "EPROTONOSUPPORT" | "EOPNOTSUPP"
  | "EAFNOSUPPORT" | "EADDRINUSE" | "EADDRNOTAVAIL" | "ENETDOWN" | "ECONNABORTED" | "ECONNRESET"
  | "ENOBUFS" | "EISCONN" | "ENOTCONN" | "ETOOMANYREFS" | "ETIMEDOUT" | "ECONNREFUSED" | "ENAMETOOLONG"
  | "EINPROGRESS" | "EALREADY";

export interface AbiConstants {
  readonly AF_UNIX: number;
  readonly AF_INET: number;
  readonly AF_INET6: number;
  readonly SOCK_STREAM: number;
  readonly SOCK_DGRAM: number;
  readonly SOCK_SEQPACKET: number;
  /** 0 where the ABI has no type flags (darwin); then fcntl/ioctl after socket() instead. */
  readonly SOCK_NONBLOCK: number;
  readonly SOCK_CLOEXEC: number;
  readonly SOL_SOCKET: number;
  readonly SCM_RIGHTS: number;
  /** -1 where absent. */
  readonly SCM_CREDENTIALS: number;
  readonly SO_PASSCRED: number;
  readonly SO_PEERCRED: number;
  /** Linux >= 6.16: refuse SCM_RIGHTS on this socket. -1 where absent. */
  readonly SO_PASSRIGHTS: number;
  readonly SO_NOSIGPIPE: number;
  /**
   * Linux >= 6.5 pidfds: SO_PASSPIDFD makes the kernel attach the sender's pidfd (SCM_PIDFD, one fd
   * installed in the receiver) to every message; SO_PEERPIDFD returns the connected peer's. -1 where absent.
   */
  readonly SO_PASSPIDFD: number;
  readonly SO_PEERPIDFD: number;
  readonly SCM_PIDFD: number;
  /** Receive timestamps: SO_TIMESTAMP(NS) makes the kernel attach SCM_TIMESTAMP(NS) to each message (-1 where absent). */
  readonly SO_TIMESTAMP: number;
  readonly SCM_TIMESTAMP: number;
  readonly SO_TIMESTAMPNS: number;
  readonly SCM_TIMESTAMPNS: number;
  /** Linux's y2038-safe spellings (same payload layout on 64-bit ABIs); -1 where absent. */
  readonly SO_TIMESTAMP_NEW: number;
  readonly SCM_TIMESTAMP_NEW: number;
  readonly SO_TIMESTAMPNS_NEW: number;
  readonly SCM_TIMESTAMPNS_NEW: number;
  readonly SO_TYPE: number;
  readonly SO_DOMAIN: number;
  readonly SO_ACCEPTCONN: number;
  readonly SO_ERROR: number;
  readonly SO_SNDBUF: number;
  readonly SO_RCVBUF: number;
  readonly SO_REUSEADDR: number;
  /** LOCAL_PEERCRED level/option (darwin/freebsd: SOL_LOCAL 0 / 1); -1 where absent. */
  readonly SOL_LOCAL: number;
  readonly LOCAL_PEERCRED: number;
  readonly LOCAL_PEERPID: number;
  readonly MSG_CTRUNC: number;
  readonly MSG_TRUNC: number;
  readonly MSG_DONTWAIT: number;
  readonly MSG_NOSIGNAL: number;
  readonly MSG_CMSG_CLOEXEC: number;
  readonly MSG_PEEK: number;
  readonly F_GETFD: number;
  readonly F_SETFD: number;
  readonly F_GETFL: number;
  readonly F_SETFL: number;
  readonly F_DUPFD_CLOEXEC: number;
  readonly FD_CLOEXEC: number;
  readonly O_NONBLOCK: number;
  readonly O_CLOEXEC: number;
  readonly O_RDONLY: number;
  readonly O_WRONLY: number;
  readonly O_RDWR: number;
  readonly FIOCLEX: number;
  readonly FIONBIO: number;
  readonly RLIMIT_NOFILE: number;
  readonly SHUT_RD: number;
  readonly SHUT_WR: number;
  readonly SHUT_RDWR: number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly POLLERR: number;
  readonly POLLHUP: number;
  readonly POLLNVAL: number;
  /** epoll (Linux) — 0 where absent. */
  readonly EPOLL_CLOEXEC: number;
  readonly EPOLL_CTL_ADD: number;
  readonly EPOLL_CTL_DEL: number;
  readonly EPOLL_CTL_MOD: number;
  readonly EPOLLIN: number;
  readonly EPOLLOUT: number;
  readonly EPOLLERR: number;
  readonly EPOLLHUP: number;
  readonly EPOLLRDHUP: number;
  readonly EPOLLONESHOT: number;
  /** Edge-triggered registration: used by bench/wake-path.ts only (the reactor is one-shot). */
  readonly EPOLLET: number;
  readonly EFD_CLOEXEC: number;
  readonly EFD_NONBLOCK: number;
  /** kqueue (darwin/freebsd) — 0 where absent. */
  readonly EVFILT_READ: number;
  readonly EVFILT_WRITE: number;
  readonly EVFILT_USER: number;
  readonly EV_ADD: number;
  readonly EV_DELETE: number;
  readonly EV_ENABLE: number;
  readonly EV_DISABLE: number;
  readonly EV_ONESHOT: number;
  readonly EV_CLEAR: number;
  readonly EV_EOF: number;
  readonly EV_ERROR: number;
  readonly NOTE_TRIGGER: number;
  readonly SIGKILL: number;
  readonly SIGTERM: number;
  readonly SIGPIPE: number;
  readonly SIG_DFL: number;
}
