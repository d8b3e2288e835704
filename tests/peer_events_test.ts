import { test } from "node:test";
import assert from "node:assert/strict";
import { emitError, hasListener, type PeerEventMap, TypedEventTarget } from "../src/bus/peer_events.ts";

interface ChildMap extends PeerEventMap {
  hubchange: CustomEvent<{ hubId: number | undefined }>;
}
class Parent<M extends PeerEventMap = PeerEventMap> extends TypedEventTarget<M> {}
class Child extends Parent<ChildMap> {}

test("TypedEventTarget gives listeners of known event types a typed detail, without casts", () => {
  const target = new Parent();
  const seen: unknown[] = [];
  target.addEventListener("peerjoin", (e) => seen.push(e.detail.id, e.detail.pid));
  target.addEventListener("disconnect", { handleEvent: (e) => seen.push(e.detail.reason, e.detail.reconnecting) });
  target.addEventListener("custom", (e: Event) => seen.push(e.type));
  target.dispatchEvent(
    new CustomEvent("peerjoin", { detail: { id: 3, pid: 42, runtime: "deno", since: 0 } }),
  );
  target.dispatchEvent(new CustomEvent("disconnect", { detail: { reason: "closed", reconnecting: false } }));
  target.dispatchEvent(new Event("custom"));
  assert.deepEqual(seen, [3, 42, "closed", false, "custom"]);
});

test("TypedEventTarget removes typed listeners, and a subclass's map adds its own events", () => {
  const target = new Child();
  let hubs = 0;
  const onHub = (e: ChildMap["hubchange"]) => {
    hubs += e.detail.hubId ?? 0;
  };
  target.addEventListener("hubchange", onHub);
  target.dispatchEvent(new CustomEvent("hubchange", { detail: { hubId: 2 } }));
  target.removeEventListener("hubchange", onHub);
  target.dispatchEvent(new CustomEvent("hubchange", { detail: { hubId: 5 } }));
  assert.equal(hubs, 2);
  // A child is usable where its parent type is expected.
  const asParent: Parent = target;
  assert.ok(asParent instanceof EventTarget);
});

test("hasListener follows added, removed, once and aborted listeners", () => {
  const target = new Parent();
  const listener = () => {};
  assert.equal(hasListener(target, "error"), false);
  target.addEventListener("error", listener);
  assert.equal(hasListener(target, "error"), true);
  target.removeEventListener("error", listener);
  assert.equal(hasListener(target, "error"), false);
  target.addEventListener("error", listener, { once: true });
  target.dispatchEvent(new CustomEvent("error", { detail: 1 }));
  assert.equal(hasListener(target, "error"), false);
  const abort = new AbortController();
  target.addEventListener("error", listener, { signal: abort.signal });
  assert.equal(hasListener(target, "error"), true);
  abort.abort();
  assert.equal(hasListener(target, "error"), false);
  target.addEventListener("error", listener, true);
  target.removeEventListener("error", listener);
  assert.equal(hasListener(target, "error"), true, "a capture listener stays until removed with capture");
});

test("emitError dispatches to error listeners, and prints with what happened when there is none", () => {
  const target = new Parent();
  const printed: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => printed.push(args);
  try {
    const err = new Error("x");
    emitError(target, err, "The handler of alert tick threw");
    assert.equal(printed.length, 1);
    assert.match(String(printed[0][0]), /The handler of alert tick threw; add an "error" listener/);
    assert.equal(printed[0][1], err);
    const seen: unknown[] = [];
    target.addEventListener("error", (e) => seen.push(e.detail));
    emitError(target, err, "The handler of alert tick threw");
    assert.deepEqual(seen, [err]);
    assert.equal(printed.length, 1);
  } finally {
    console.error = original;
  }
});
