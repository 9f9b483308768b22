/**
 * Where one async wait's time goes, and two alternative wake paths (Linux): `bun bench/wake-path.ts [rounds]`.
 *
 * A peer thread (a Worker blocked in read(2)) echoes one byte on a socketpair. The main thread writes a
 * byte and waits for the echo in one of these ways, interleaved round by round (each round runs every
 * variant for a batch of round trips and records its median; the table gives the median over rounds
 * and the per-round ratio to the library):
 *
 *   spin        non-blocking read(2) in a loop: no wake-up of this thread at all (the floor)
 *   blocking    one blocking read(2): the kernel wakes the main thread directly (what C gets)
 *   library     the library's reactor: try, EAGAIN, waitFor(fd) (EPOLL_CTL_MOD one-shot, the reactor
 *               Worker's epoll_wait, postMessage, the main event loop), read
 *   oneshot     a minimal copy of that path (no registration maps, no waiter sets)
 *   edge        the same minimal Worker + postMessage, the fd registered once with EPOLLET and no
 *               EPOLLONESHOT: no epoll_ctl per wait; every arrival is reported, wanted or not
 *   unref'ed    oneshot with its Worker unref'ed: Bun's main loop then spins while it waits (a whole
 *               core), which looks fast here; the library refs its Worker while a wait is pending
 *
 * Also: the cost of the one epoll_ctl(MOD) per wait that `edge` saves, timed on its own.
 * Ratios only, to the library variant in the same round (the VM's speed drifts by 2× over seconds).
 */
import { abi, K } from "../src/platform/index.ts";
import { errno, libc } from "../src/platform/libc.ts";
import { waitFor } from "../src/async/reactor.ts";
import { encodeEpollEvent } from "../src/async/backend-epoll.ts";

if (abi.os !== "linux" || !abi.epollEvent) {
  console.log("bench/wake-path.ts: Linux only (epoll); skipped");
  process.exit(0);
}
const ROUNDS = Number(process.argv[2] ?? 41);
const BATCH = 200;
const EAGAIN = abi.errno.EAGAIN;

function socketpair(): [number, number] {
  const sv = new Int32Array(2);
  if (libc.socketpair(K.AF_UNIX, K.SOCK_STREAM | K.SOCK_CLOEXEC, 0, sv) !== 0) throw new Error(`socketpair: errno ${errno()}`);
  return [sv[0]!, sv[1]!];
}
function setNonblocking(fd: number): void {
  const flags = libc.fcntl(fd, K.F_GETFL, 0);
  if (libc.fcntl(fd, K.F_SETFL, flags | K.O_NONBLOCK) !== 0) throw new Error(`fcntl: errno ${errno()}`);
}

// ---- echo peers: a Worker blocked in read(2) per socketpair ----------------------------------------
// The edge variant gets a pair of its own: its registration is always armed, so on a shared pair
// every echo would also wake its Worker while another variant runs.
function echoPair(): number {
  const [mine, peers] = socketpair();
  setNonblocking(mine);
  const source = `
    const { dlopen } = require("bun:ffi");
    const { symbols: s } = dlopen(${JSON.stringify(abi.libName)}, {
      read: { args: ["i32", "ptr", "u64"], returns: "i64" },
      write: { args: ["i32", "ptr", "u64"], returns: "i64" },
    });
    const b = new Uint8Array(64);
    for (;;) {
      const n = Number(s.read(${peers}, b, 64));
      if (n <= 0) break;
      s.write(${peers}, b, n);
    }
  `;
  new Worker(URL.createObjectURL(new Blob([source]))).unref();
  return mine;
}
const shared = echoPair();
const edgeFd = echoPair();

const one = new Uint8Array([0x78]);
const inbox = new Uint8Array(64);
function send(fd: number): void {
  if (Number(libc.write(fd, one, 1)) !== 1) throw new Error(`write: errno ${errno()}`);
}
/** Non-blocking read: true when the echo was consumed. */
function tryRead(fd: number): boolean {
  const n = Number(libc.read(fd, inbox, 64));
  if (n > 0) return true;
  if (n === 0) throw new Error("peer closed");
  const e = errno();
  if (e !== EAGAIN) throw new Error(`read: errno ${e}`);
  return false;
}

// ---- the edge-triggered mini reactor (same Worker + postMessage as the library's) -----------------
const l = abi.epollEvent;
const epfd = libc.epoll_create1(K.EPOLL_CLOEXEC);
const ev = new Uint8Array(l.size);
encodeEpollEvent(l, new DataView(ev.buffer), 0, K.EPOLLIN | K.EPOLLRDHUP | K.EPOLLET, 1);
if (libc.epoll_ctl(epfd, K.EPOLL_CTL_ADD, edgeFd, ev) !== 0) throw new Error(`epoll_ctl: errno ${errno()}`);
const edgeSource = `
  const { dlopen } = require("bun:ffi");
  const { symbols: s } = dlopen(${JSON.stringify(abi.libName)}, { epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" } });
  const buf = new Uint8Array(${l.size * 16});
  for (;;) { const n = s.epoll_wait(${epfd}, buf, 16, -1); if (n > 0) postMessage(n); }
`;
const edgeWorker = new Worker(URL.createObjectURL(new Blob([edgeSource])));
edgeWorker.unref();
let edgeReady = false;
let edgeWaiter: (() => void) | null = null;
edgeWorker.onmessage = () => {
  const w = edgeWaiter;
  if (w) {
    edgeWaiter = null;
    w();
  } else edgeReady = true; // an arrival nobody waited for (already read): the next wait retries at once
};
function edgeReadable(): Promise<void> {
  if (edgeReady) {
    edgeReady = false;
    return Promise.resolve();
  }
  return new Promise((r) => (edgeWaiter = r));
}

// ---- the same mini reactor, one-shot: re-armed with EPOLL_CTL_MOD before every wait (the library's registration) ----
const oneshotFd = echoPair();
const epfd1 = libc.epoll_create1(K.EPOLL_CLOEXEC);
const ev1 = new Uint8Array(l.size);
encodeEpollEvent(l, new DataView(ev1.buffer), 0, K.EPOLLIN | K.EPOLLRDHUP | K.EPOLLONESHOT, 1);
if (libc.epoll_ctl(epfd1, K.EPOLL_CTL_ADD, oneshotFd, ev1) !== 0) throw new Error(`epoll_ctl: errno ${errno()}`);
const oneshotWorker = new Worker(URL.createObjectURL(new Blob([edgeSource.replace(`${epfd}`, `${epfd1}`)])));
oneshotWorker.unref();
let oneshotWaiter: (() => void) | null = null;
oneshotWorker.onmessage = () => {
  const w = oneshotWaiter;
  oneshotWaiter = null;
  w?.();
};
function oneshotReadable(): Promise<void> {
  libc.epoll_ctl(epfd1, K.EPOLL_CTL_MOD, oneshotFd, ev1);
  return new Promise((r) => (oneshotWaiter = r));
}

// ---- the variants -------------------------------------------------------------------------------
type Variant = (n: number) => Promise<number[]>;
const now = () => performance.now();
const variants: Record<string, Variant> = {
  async spin(n) {
    const fd = shared;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = now();
      send(fd);
      while (!tryRead(fd));
      out.push(now() - t0);
    }
    return out;
  },
  async blocking(n) {
    const fd = shared;
    const out: number[] = [];
    const flags = libc.fcntl(fd, K.F_GETFL, 0);
    libc.fcntl(fd, K.F_SETFL, flags & ~K.O_NONBLOCK);
    for (let i = 0; i < n; i++) {
      const t0 = now();
      send(fd);
      if (!tryRead(fd)) throw new Error("blocking read returned EAGAIN");
      out.push(now() - t0);
    }
    libc.fcntl(fd, K.F_SETFL, flags);
    return out;
  },
  async library(n) {
    const fd = shared;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = now();
      send(fd);
      while (!tryRead(fd)) await waitFor(fd, "readable");
      out.push(now() - t0);
    }
    return out;
  },
  async oneshot(n) {
    const fd = oneshotFd;
    const out: number[] = [];
    oneshotWorker.ref(); // see the header: an unref'ed Worker's messages are awaited by spinning
    for (let i = 0; i < n; i++) {
      const t0 = now();
      send(fd);
      while (!tryRead(fd)) await oneshotReadable();
      out.push(now() - t0);
    }
    oneshotWorker.unref();
    return out;
  },
  async "unref'ed"(n) {
    const fd = oneshotFd;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = now();
      send(fd);
      while (!tryRead(fd)) await oneshotReadable();
      out.push(now() - t0);
    }
    return out;
  },
  async edge(n) {
    const fd = edgeFd;
    const out: number[] = [];
    edgeWorker.ref();
    for (let i = 0; i < n; i++) {
      const t0 = now();
      send(fd);
      while (!tryRead(fd)) await edgeReadable();
      out.push(now() - t0);
    }
    edgeWorker.unref();
    return out;
  },
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};
const names = Object.keys(variants);
for (const k of names) await variants[k]!(BATCH); // warm-up (starts the library's reactor)
const perRound: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
const ratios: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  const order = [...names].sort(() => Math.random() - 0.5);
  const m: Record<string, number> = {};
  for (const k of order) m[k] = median(await variants[k]!(BATCH));
  for (const k of names) {
    perRound[k]!.push(m[k]!);
    ratios[k]!.push(m[k]! / m.library!);
  }
}

// epoll_ctl(MOD) on its own: the syscall the edge-triggered registration saves per wait.
const probe = socketpair();
const modEv = new Uint8Array(l.size);
encodeEpollEvent(l, new DataView(modEv.buffer), 0, K.EPOLLIN | K.EPOLLONESHOT, 9);
const ep2 = libc.epoll_create1(K.EPOLL_CLOEXEC);
libc.epoll_ctl(ep2, K.EPOLL_CTL_ADD, probe[0], modEv);
const ctlTimes: number[] = [];
for (let r = 0; r < 21; r++) {
  const t0 = now();
  for (let i = 0; i < 2000; i++) libc.epoll_ctl(ep2, K.EPOLL_CTL_MOD, probe[0], modEv);
  ctlTimes.push(((now() - t0) * 1000) / 2000);
}

console.log(`wake path, one byte echoed by a peer thread; ${ROUNDS} rounds × ${BATCH} round trips per variant, interleaved`);
console.log("| variant | round trip p50 (median over rounds) | vs library, median [min–max] of per-round ratios |");
console.log("|---|---:|---|");
for (const k of names) {
  const rs = [...ratios[k]!].sort((a, b) => a - b);
  console.log(`| ${k} | ${(median(perRound[k]!) * 1000).toFixed(1)} µs | ${median(rs).toFixed(2)}× [${rs[0]!.toFixed(2)}–${rs[rs.length - 1]!.toFixed(2)}] |`);
}
console.log(`\nepoll_ctl(EPOLL_CTL_MOD) through bun:ffi, alone: ${median(ctlTimes).toFixed(2)} µs per call (median of 21 × 2000)`);
for (const fd of [...probe, ep2, epfd, shared, edgeFd]) libc.close(fd);
process.exit(0);
