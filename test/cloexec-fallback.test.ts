/**
 * Crate 5.1.2 (cloexec_received_sets_flag_via_fcntl), adapted: the CLOEXEC fallback used where the
 * kernel has no MSG_CMSG_CLOEXEC (darwin) runs here too. A received fd is made inheritable again (as it
 * would arrive on macOS), the fallback sets FD_CLOEXEC; a failing fd throws and, through the receive
 * pipeline's rule, the whole batch is closed.
 */
import { expect, test } from "bun:test";
import { openSync } from "node:fs";
import { UnixStream, SystemError } from "../src/index.ts";
import { cloexecFallback } from "../src/msg-io.ts";
import { adopt, closeAll } from "../src/owned-fd.ts";
import { fcntl, getCloexec } from "../src/sys.ts";
import { K } from "../src/platform/index.ts";
import { fdSnapshot, expectNoNewFds } from "./helpers/fds.ts";

test("the fallback sets FD_CLOEXEC on fds that arrived inheritable", () => {
  const baseline = fdSnapshot();
  const file = openSync("/dev/null", "r");
  const [a, b] = UnixStream.pair();
  a.sendFdsSync("x", [file, file]);
  const got = b.recvFdsSync(2);
  for (const fd of got.fds) {
    fcntl(fd.fd, K.F_SETFD, 0); // as it would arrive without MSG_CMSG_CLOEXEC
    expect(getCloexec(fd.fd)).toBe(false);
  }
  cloexecFallback(got.fds);
  for (const fd of got.fds) expect(getCloexec(fd.fd)).toBe(true);
  got[Symbol.dispose]();
  a.close();
  b.close();
  closeAll([adopt(file)]);
  expectNoNewFds(baseline);
});

test("a failure is thrown as a SystemError so the receive can close the batch", () => {
  const file = openSync("/dev/null", "r");
  const good = adopt(file);
  const stale = adopt(0x7fff_fff0); // a number that is not open: ioctl fails with EBADF
  let err: unknown;
  try {
    cloexecFallback([good, stale]);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SystemError);
  expect((err as SystemError).code).toBe("EBADF");
  expect((err as SystemError).syscall).toBe("ioctl");
  good.close();
  stale.release(); // never ours: don't close a number we don't own
});
