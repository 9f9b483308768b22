/**
 * systemd integration: LISTEN_FDS parsing in a real child process (pid check, names, CLOEXEC, env
 * cleared) and sd_notify against a fake NOTIFY_SOCKET (a bound datagram socket in this process):
 * READY/RELOADING/MAINPID/STOPPING and FDSTORE=1 + FDNAME with the fds attached (SCM_RIGHTS).
 */
import { afterEach, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { closeSync, mkdtempSync, openSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnixDatagram } from "../src/index.ts";
import * as sys from "../src/sys.ts";
import {
  listenFds,
  sdNotify,
  sdNotifyReady,
  sdNotifyReloading,
  sdNotifyMainPid,
  sdNotifyFdStore,
  sdNotifyFdStoreRemove,
  sdNotifyStopping,
} from "../src/systemd.ts";
import { expectNoFdLeak } from "./helpers/fds.ts";

const FIXTURE = join(import.meta.dir, "fixtures", "handoff-listenfds.ts");
const dec = new TextDecoder();

function tcpListener(): Promise<net.Server> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

async function runChild(env: Record<string, string>, fds: number[], listenPid: "self" | string): Promise<any> {
  // `exec` keeps the shell's pid, so LISTEN_PID=$$ names the Bun process (like systemd sets it).
  const pidExpr = listenPid === "self" ? "$$" : listenPid;
  const p = Bun.spawn(["sh", "-c", `LISTEN_PID=${pidExpr} exec "$0" "$1"`, process.execPath, FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit", ...fds],
  });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return JSON.parse(out.trim());
}

describe("listenFds (sd_listen_fds_with_names)", () => {
  test("child process: fds 3.. with names, socket metadata, CLOEXEC set, env cleared", async () => {
    const a = await tcpListener();
    const b = await tcpListener();
    try {
      const fa = (a as any)._handle.fd as number;
      const fb = (b as any)._handle.fd as number;
      const r = await runChild({ LISTEN_FDS: "2", LISTEN_FDNAMES: "http:admin" }, [fa, fb], "self");
      expect(r.error).toBeUndefined();
      expect(r.pidMatched).toBe(true);
      expect(r.fds.map((f: any) => [f.n, f.name, f.cloexec])).toEqual([
        [3, "http", true],
        [4, "admin", true],
      ]);
      expect(r.fds[0].socket).toMatchObject({ family: "ipv4", address: "127.0.0.1", port: (a.address() as net.AddressInfo).port, type: "stream", listening: true });
      expect(r.fds[1].socket.port).toBe((b.address() as net.AddressInfo).port);
      expect(r.envAfter).toEqual({ LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null });
    } finally {
      a.close();
      b.close();
    }
  });

  test("child process: LISTEN_PID of another process -> no fds, env still cleared", async () => {
    const a = await tcpListener();
    try {
      const r = await runChild({ LISTEN_FDS: "1" }, [(a as any)._handle.fd], "1");
      expect(r.fds).toEqual([]);
      expect(r.envAfter).toEqual({ LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null });
    } finally {
      a.close();
    }
  });

  test("in-process: no variables -> []; names default to 'unknown'; malformed input throws ERR_UA_PROTOCOL", async () => {
    expect(listenFds({ env: {} })).toEqual([]);
    const env1: Record<string, string | undefined> = { LISTEN_PID: String(process.pid), LISTEN_FDS: "x" };
    expect(() => listenFds({ env: env1 })).toThrow(/LISTEN_FDS/);
    expect(env1.LISTEN_PID).toBeUndefined();
    expect(() => listenFds({ env: { LISTEN_PID: String(process.pid), LISTEN_FDS: "2", LISTEN_FDNAMES: "one" } })).toThrow(/LISTEN_FDNAMES has 1 names/);
    expect(() => listenFds({ env: { LISTEN_PID: "abc", LISTEN_FDS: "1" } })).toThrow(/LISTEN_PID/);
    const keep: Record<string, string | undefined> = { LISTEN_PID: "1", LISTEN_FDS: "1" };
    expect(listenFds({ env: keep, unsetEnvironment: false })).toEqual([]);
    expect(keep.LISTEN_FDS).toBe("1");
  });
});

describe("sdNotify against a fake NOTIFY_SOCKET", () => {
  let dir = "";
  const saved = process.env.NOTIFY_SOCKET;
  afterEach(() => {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = "";
  });

  function fakeManager(abstract = false): { sock: UnixDatagram; env: string } {
    if (abstract) {
      const name = `ua-notify-${process.pid}-${Math.random().toString(36).slice(2)}`;
      return { sock: UnixDatagram.bindSync("\0" + name), env: "@" + name };
    }
    dir = mkdtempSync(join(tmpdir(), "ua-notify-"));
    const path = join(dir, "notify.sock");
    return { sock: UnixDatagram.bindSync(path), env: path };
  }

  test("returns false and sends nothing when NOTIFY_SOCKET is unset", () => {
    delete process.env.NOTIFY_SOCKET;
    expect(sdNotify("READY=1")).toBe(false);
    expect(sdNotifyReady()).toBe(false);
  });

  test("READY=1, STATUS, RELOADING=1 + MONOTONIC_USEC, MAINPID, STOPPING: one datagram each", async () => {
    await expectNoFdLeak(() => {
      const m = fakeManager();
      using sock = m.sock;
      process.env.NOTIFY_SOCKET = m.env;
      expect(sdNotifyReady("serving")).toBe(true);
      expect(dec.decode(sock.recvFdsSync(0).data)).toBe("READY=1\nSTATUS=serving");
      expect(sdNotifyReloading()).toBe(true);
      const reload = dec.decode(sock.recvFdsSync(0).data);
      expect(reload).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+$/);
      expect(sdNotifyMainPid(4242)).toBe(true);
      expect(dec.decode(sock.recvFdsSync(0).data)).toBe("MAINPID=4242");
      expect(sdNotifyStopping()).toBe(true);
      expect(dec.decode(sock.recvFdsSync(0).data)).toBe("STOPPING=1");
      expect(sdNotify({ READY: true, STATUS: "x" })).toBe(true);
      expect(dec.decode(sock.recvFdsSync(0).data)).toBe("READY=1\nSTATUS=x");
    });
  });

  test("FDSTORE=1 + FDNAME with fds attached (SCM_RIGHTS on the datagram); the sender keeps its fds", async () => {
    const srv = await tcpListener();
    try {
      await expectNoFdLeak(() => {
        const m = fakeManager();
        using sock = m.sock;
        process.env.NOTIFY_SOCKET = m.env;
        const lfd = (srv as any)._handle.fd as number;
        expect(sdNotifyFdStore("http", [lfd], { poll: false })).toBe(true);
        using got = sock.recvFdsSync(4);
        expect(dec.decode(got.data)).toBe("FDSTORE=1\nFDNAME=http\nFDPOLL=0");
        expect(got.fds.length).toBe(1);
        expect(readlinkSync(`/proc/self/fd/${got.fds[0]!.fd}`)).toBe(readlinkSync(`/proc/self/fd/${lfd}`));
        expect(sys.getCloexec(got.fds[0]!.fd)).toBe(true);
        expect(sys.isOpen(lfd)).toBe(true);
        expect(sdNotifyFdStoreRemove("http")).toBe(true);
        expect(dec.decode(sock.recvFdsSync(0).data)).toBe("FDSTOREREMOVE=1\nFDNAME=http");
      });
    } finally {
      srv.close();
    }
  });

  test("abstract @name socket, unsetEnvironment, and input validation", () => {
    const m = fakeManager(true);
    using sock = m.sock;
    process.env.NOTIFY_SOCKET = m.env;
    expect(sdNotify("WATCHDOG=1", { unsetEnvironment: true })).toBe(true);
    expect(process.env.NOTIFY_SOCKET).toBeUndefined();
    expect(dec.decode(sock.recvFdsSync(0).data)).toBe("WATCHDOG=1");
    process.env.NOTIFY_SOCKET = m.env;
    expect(() => sdNotifyFdStore("bad:name", [0])).toThrow(/FDNAME/);
    expect(() => sdNotifyFdStore("http", [])).toThrow(/at least one fd/);
    expect(() => sdNotify({ STATUS: "a\nb" })).toThrow(/newline/);
    expect(() => sdNotify({ "bad key": 1 })).toThrow(/invalid variable name/);
    process.env.NOTIFY_SOCKET = "vsock:2:1234";
    expect(() => sdNotify("READY=1")).toThrow(/vsock/);
  });
});

test("listenFds({ unsetEnvironment: false }) called twice gives one owner per fd: closing both results never closes a reused number", async () => {
  const devNull = openSync("/dev/null", "r");
  try {
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "listenfds-twice.ts")], {
      env: { ...process.env, LISTEN_FDS: "1" },
      stdio: ["ignore", "pipe", "inherit", devNull],
    });
    const out = JSON.parse((await new Response(child.stdout).text()).trim());
    expect(await child.exited).toBe(0);
    // A second call must either return the same owners, refuse, or return nothing — never a second owner.
    expect(out.stillOpen).toBe(true);
  } finally {
    closeSync(devNull);
  }
});
