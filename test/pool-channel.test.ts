/**
 * The supervisor <-> worker control channel (src/pool/channel.ts): a message sent right before close()
 * reaches the peer even when the peer's own message is still unread on our side (closing a Unix socket
 * with unread data would otherwise reset the peer before it reads ours), and its fds are closed.
 */
import { expect, test } from "bun:test";
import { UnixSeqpacket } from "../src/index.ts";
import * as sys from "../src/sys.ts";
import { PoolChannel } from "../src/pool/channel.ts";
import { expectNoFdLeak } from "./helpers/fds.ts";

test("close(): the peer reads our last message and then EOF; its unread message and fds are closed", async () => {
  await expectNoFdLeak(async () => {
    const [mine, theirs] = UnixSeqpacket.pair();
    const chan = new PoolChannel(mine);
    const peer = new PoolChannel(theirs);
    const [r, w] = sys.pipe();
    try {
      expect(peer.send({ t: "status" }, [r])).toBe(true); // never read by `chan`
      expect(chan.send({ t: "stop" })).toBe(true);
      chan.close();
      // (a send of the peer's before this receive would consume the reset and hide it)
      const got = await peer.recv({ deadline: performance.now() + 5000 });
      expect(got?.msg).toEqual({ t: "stop" });
      expect(await peer.recv({ deadline: performance.now() + 5000 })).toBeNull();
      expect(peer.send({ t: "late" })).toBe(false); // EPIPE
    } finally {
      peer.close();
      sys.closeFd(r);
      sys.closeFd(w);
    }
  });
});

test("takeQueued(): the messages already queued, without waiting; their fds closed, malformed ones skipped", async () => {
  await expectNoFdLeak(async () => {
    const [mine, theirs] = UnixSeqpacket.pair();
    const chan = new PoolChannel(mine);
    const [r, w] = sys.pipe();
    try {
      theirs.sendFdsSync(JSON.stringify({ t: "drained", reports: [] }), [r]);
      theirs.sendFdsSync("not json");
      theirs.sendFdsSync(JSON.stringify({ t: "stats", seq: 1 }));
      expect(chan.takeQueued()).toEqual([{ t: "drained", reports: [] }, { t: "stats", seq: 1 }]);
      expect(chan.takeQueued()).toEqual([]); // nothing queued: returns at once
      theirs.close();
      expect(chan.takeQueued()).toEqual([]); // EOF
    } finally {
      chan.close();
      sys.closeFd(r);
      sys.closeFd(w);
    }
  });
});
