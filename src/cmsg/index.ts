/** The pure codec: no FFI, no fds. Every function takes the ABI table it encodes for. */
export { CmsgCursor, parseControlMessages, type ParsedCmsg } from "./parse.ts";
export { appendCmsg, appendRights, appendCredentials } from "./encode.ts";
export { kindsOf, unknownMessage, type AncillaryMessage, type CmsgKind, type CmsgKinds } from "./kinds.ts";
export { bufferSizeForRights, bufferSizeForCredentials, attachedControlSize, receiveControlSize, cmsgLen, cmsgSpace, roundUp, FD_SIZE } from "./sizes.ts";
export { readUnsigned, writeUnsigned, readInt32, writeInt32, viewOf, fieldMax } from "./fields.ts";
