/**
 * The socket layer's public surface: UnixStream, UnixDatagram, UnixSeqpacket and their listeners, the
 * result classes and the coercion helpers the low-level API shares. The code lives in src/socket/:
 * coerce.ts (arguments), results.ts, create.ts (making and checking sockets), base.ts (UnixSocket),
 * stream.ts, datagram.ts, seqpacket.ts, listener.ts. Holds no fds itself.
 */
export { DEFAULT_STREAM_BUFFER, DEFAULT_DATAGRAM_BUFFER, UnixSocket } from "./socket/base.ts";
export {
  MAX_RECEIVE_FDS,
  toBytes,
  toWritable,
  checkFdList,
  checkMaxFds,
  resolveFdList,
  holdFds,
  type Payload,
  type RecvOptions,
  type AsyncOptions,
  type BatchOptions,
} from "./socket/coerce.ts";
export { ReceivedFds, ReceivedInto } from "./socket/results.ts";
export { UnixStream } from "./socket/stream.ts";
export { UnixDatagram } from "./socket/datagram.ts";
export { UnixSeqpacket } from "./socket/seqpacket.ts";
export { UnixListener, UnixSeqpacketListener, type BindOptions } from "./socket/listener.ts";
