/**
 * unix-ancillary: SCM_RIGHTS fd passing over Unix domain sockets for Bun, leak-free.
 * Received fds are always OwnedFd objects; fds you send stay yours.
 */
export { OwnedFd, type FdLike, type HeldFdSource } from "./owned-fd.ts";
export {
  UnixSocket,
  UnixStream,
  UnixDatagram,
  UnixSeqpacket,
  UnixListener,
  UnixSeqpacketListener,
  ReceivedFds,
  ReceivedInto,
  DEFAULT_STREAM_BUFFER,
  DEFAULT_DATAGRAM_BUFFER,
  MAX_RECEIVE_FDS,
  type Payload,
  type RecvOptions,
  type BatchOptions,
  type BindOptions,
} from "./socket.ts";
export {
  SocketAncillary,
  Messages,
  ScmRights,
  cmsgSendmsg,
  cmsgRecvmsg,
  type AncillaryMessage,
  type RecvResult,
  type SocketLike,
} from "./ancillary.ts";
export { ScmCredentials, setPassCred, passCred, peerCredentials, setPassRights, passRights, type PeerCredentials } from "./credentials.ts";
export { setPassPidfd, passPidfd, peerPidfd } from "./pidfd.ts";
export { SystemError, UnixAncillaryError, MESSAGES, type UnixAncillaryErrorCode, type ErrorKind } from "./errors.ts";
export { spawnWithChannel, channelFromParent, CHANNEL_FD_ENV, type ChannelOptions, type SpawnedWithChannel } from "./channel.ts";
export { abi as platform } from "./platform/index.ts";
export type { SocketAddress } from "./sys.ts";
