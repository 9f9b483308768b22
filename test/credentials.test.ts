/**
 * Credentials (Linux): the Rust crate's tests/credentials.rs (5 cases), peerCredentials on a socketpair,
 * and SO_PASSRIGHTS (Linux >= 6.16): with it off, the kernel refuses SCM_RIGHTS sent to the socket
 * (the sender's sendmsg fails with EPERM) while data-only sends still work.
 */
import { describe, expect, test } from "bun:test";
import { execSync } from "node:child_process";
import {
  cmsgRecvmsg,
  cmsgSendmsg,
  OwnedFd,
  passCred,
  passRights,
  peerCredentials,
  ScmCredentials,
  setPassCred,
  setPassRights,
  SocketAncillary,
  SystemError,
  UnixAncillaryError,
  UnixDatagram,
  UnixStream,
} from "../src/index.ts";
import { abi } from "../src/platform/index.ts";
import { fdTarget, fdSnapshot, expectNewFds, expectNoNewFds } from "./helpers/fds.ts";
import { openRaw, setNonblocking } from "./fixtures/libc.ts";

const linux = abi.os === "linux";
const uid = process.getuid!();
const gid = process.getgid!();

function devNull(): OwnedFd {
  return OwnedFd.from(openRaw("/dev/null"));
}

type Collected = { fds: OwnedFd[]; creds: ScmCredentials[] };
function collect(anc: SocketAncillary): Collected {
  const out: Collected = { fds: [], creds: [] };
  for (const m of anc.messages()) {
    switch (m.type) {
      case "rights":
        for (const fd of m.fds) out.fds.push(fd);
        break;
      case "credentials":
        out.creds.push(m.credentials);
        break;
      default:
        break; // unknown kinds may be added
    }
  }
  return out;
}

function kernelVersion(): [number, number] {
  const r = execSync("uname -r").toString().trim();
  const m = /^(\d+)\.(\d+)/.exec(r);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

describe.if(linux)("credentials (Rust crate parity)", () => {
  test("1. fds_and_credentials_arrive_from_one_recvmsg", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const [other, otherPeer] = UnixStream.pair();
    setPassCred(rx, true);
    expect(passCred(rx)).toBe(true);
    const size = SocketAncillary.bufferSizeForRights(1) + SocketAncillary.bufferSizeForCredentials();
    const send = new SocketAncillary(new Uint8Array(size));
    send.addFds([other]);
    send.addCredentials(ScmCredentials.forThisProcess());
    expect(send.length).toBe(size);
    expect(cmsgSendmsg(tx, ["x"], send)).toBe(1);
    const recv = new SocketAncillary(new Uint8Array(256));
    const r = cmsgRecvmsg(rx, [new Uint8Array(8)], recv);
    expect(r.bytesRead).toBe(1);
    expect(r.truncated).toBe(false);
    const got = collect(recv);
    expect(got.fds.length).toBe(1);
    expect(fdTarget(got.fds[0]!.fd)).toMatch(/^socket:/);
    expect(got.creds.length).toBe(1);
    expect(got.creds[0]!.toJSON()).toEqual({ pid: process.pid, uid, gid });
    expect(got.creds[0]!.equals(ScmCredentials.forThisProcess())).toBe(true);
    got.fds.forEach((f) => f.close());
    for (const s of [tx, rx, other, otherPeer]) s.close();
    expectNoNewFds(baseline);
  });

  test("2. kernel_supplies_credentials_when_sender_sends_none", () => {
    const [tx, rx] = UnixStream.pair();
    setPassCred(rx, true);
    expect(tx.sendFdsSync("hi", [])).toBe(2);
    using recv = new SocketAncillary(new Uint8Array(256));
    cmsgRecvmsg(rx, [new Uint8Array(8)], recv);
    const got = collect(recv);
    expect(got.creds.length).toBe(1);
    expect(got.creds[0]!.uid).toBe(uid);
    expect(got.creds[0]!.gid).toBe(gid);
    expect(got.creds[0]!.pid).toBe(process.pid);
    expect(got.fds.length).toBe(0);
    tx.close();
    rx.close();
  });

  test("3. no_credentials_without_passcred", () => {
    const [tx, rx] = UnixStream.pair();
    expect(passCred(rx)).toBe(false);
    const file = devNull();
    tx.sendFdsSync("hi", [file]);
    using recv = new SocketAncillary(new Uint8Array(256));
    cmsgRecvmsg(rx, [new Uint8Array(8)], recv);
    const got = collect(recv);
    expect(got.creds).toEqual([]);
    expect(got.fds.length).toBe(1);
    got.fds.forEach((f) => f.close());
    file.close();
    tx.close();
    rx.close();
  });

  for (const [name, make] of [
    ["4. maximum_rights_with_automatic_credentials_stream", () => UnixStream.pair()],
    ["5. maximum_rights_with_automatic_credentials_datagram", () => UnixDatagram.pair()],
  ] as const) {
    test(`${name} (${abi.maxFdsPerSend} fds)`, () => {
      const baseline = fdSnapshot();
      const [tx, rx] = make();
      setPassCred(rx, true);
      const file = devNull();
      const max = abi.maxFdsPerSend;
      expect(tx.sendFdsSync("x", Array(max).fill(file))).toBe(1);
      const before = fdSnapshot();
      const got = rx.recvFdsExactSync(max);
      expect(got.fds.length).toBe(max);
      expectNewFds(before, max);
      got[Symbol.dispose]();
      file.close();
      tx.close();
      rx.close();
      expectNoNewFds(baseline);
    });
  }

  test("setPassCred(false) turns it back off; credentials stop arriving", () => {
    const [tx, rx] = UnixStream.pair();
    setPassCred(rx, true);
    setPassCred(rx, false);
    expect(passCred(rx)).toBe(false);
    tx.sendFdsSync("x", []);
    using recv = new SocketAncillary(new Uint8Array(256));
    cmsgRecvmsg(rx, [new Uint8Array(8)], recv);
    expect(collect(recv).creds).toEqual([]);
    tx.close();
    rx.close();
  });

  // root (CAP_SYS_ADMIN) may claim any pid, so this only means something unprivileged
  test.if(process.geteuid!() !== 0)("claiming someone else's pid fails the whole sendmsg with EPERM (unprivileged only)", () => {
    const [tx, rx] = UnixStream.pair();
    setPassCred(rx, true);
    const send = new SocketAncillary(new Uint8Array(64));
    send.addCredentials(new ScmCredentials(1, uid, gid));
    let err: unknown;
    try {
      cmsgSendmsg(tx, ["x"], send);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SystemError);
    expect((err as SystemError).code).toBe("EPERM");
    tx.close();
    rx.close();
  });
});

describe("peerCredentials", () => {
  test("on a socketpair equals {pid: process.pid, uid, gid} on both ends", () => {
    const [a, b] = UnixStream.pair();
    expect(peerCredentials(a)).toEqual({ pid: process.pid, uid, gid });
    expect(peerCredentials(b)).toEqual({ pid: process.pid, uid, gid });
    expect(peerCredentials(b.fd)).toEqual({ pid: process.pid, uid, gid });
    const [d1, d2] = UnixDatagram.pair();
    expect(peerCredentials(d1)).toEqual({ pid: process.pid, uid, gid });
    for (const s of [a, b, d1, d2]) s.close();
  });

  test("on a closed socket: ERR_UA_CLOSED", () => {
    const [a, b] = UnixStream.pair();
    a.close();
    let err: unknown;
    try {
      peerCredentials(a);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnixAncillaryError);
    expect((err as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    b.close();
  });
});

describe.if(linux)("SO_PASSRIGHTS", () => {
  const [major, minor] = kernelVersion();
  // qemu-user (the arm64 CI runs) does not translate SO_PASSRIGHTS and answers ENOPROTOOPT, so an
  // emulated process sees the option as unsupported whatever the host kernel is.
  const emulated = process.env.UA_EMULATED === "1";
  const supported = !emulated && (major > 6 || (major === 6 && minor >= 16));

  test.if(supported)(`setPassRights(rx, false) makes fd sends fail with EPERM; data-only sends still work (kernel ${major}.${minor})`, () => {
    const baseline = fdSnapshot();
    for (const make of [() => UnixStream.pair(), () => UnixDatagram.pair()] as const) {
      const [tx, rx] = make();
      setNonblocking(rx.fd);
      expect(passRights(rx)).toBe(true);
      setPassRights(rx, false);
      expect(passRights(rx)).toBe(false);
      expect(passRights(tx)).toBe(true); // per socket
      const file = devNull();
      let err: unknown;
      try {
        tx.sendFdsSync("x", [file]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SystemError);
      expect((err as SystemError).code).toBe("EPERM");
      expect((err as SystemError).errno).toBe(1);
      expect((err as SystemError).syscall).toBe("sendmsg");
      // nothing arrived (not even the payload byte)
      let eagain: unknown;
      try {
        rx.recvFdsSync(1);
      } catch (e) {
        eagain = e;
      }
      expect((eagain as SystemError).code).toBe("EAGAIN");
      // data-only sends, including the header-only SCM_RIGHTS sendFdsSync attaches, still work
      expect(tx.sendFdsSync("ok")).toBe(2);
      expect(tx.sendFdsVectoredSync(["o", "k"], [])).toBe(2);
      const got = rx.recvFdsSync(4, { bufferSize: 2 });
      expect(new TextDecoder().decode(got.data)).toBe("ok");
      expect(got.fds).toEqual([]);
      // turning it back on accepts fds again
      setPassRights(rx, true);
      rx.recvFdsSync(0, { bufferSize: 2 });
      tx.sendFdsSync("y", [file]);
      using back = rx.recvFdsSync(1);
      expect(back.fds.length).toBe(1);
      file.close();
      tx.close();
      rx.close();
    }
    expectNoNewFds(baseline);
  });

  test.if(!supported)(`setPassRights throws ERR_UA_UNSUPPORTED on kernel ${major}.${minor}${emulated ? " under qemu-user" : ""}`, () => {
    const [tx, rx] = UnixStream.pair();
    let err: unknown;
    try {
      setPassRights(rx, false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnixAncillaryError);
    expect((err as UnixAncillaryError).code).toBe("ERR_UA_UNSUPPORTED");
    tx.close();
    rx.close();
  });
});
