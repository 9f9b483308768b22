/**
 * The engine's own view of caller buffers: lengths, offsets and backing stores read through the
 * built-in getters, captured once at module load.
 *
 * Why: every address and length that reaches a syscall comes from a caller object. A Uint8Array
 * subclass (or an own accessor on a plain one) can answer `byteLength`, `byteOffset`, `buffer` or
 * `length` with anything; reading them as properties would let it steer the kernel outside the view's
 * memory. The built-in getters read the view's internal slots and run no user code.
 *
 * Holds no fds.
 */

/** Whether a built-in getter accepts `x` as its receiver (it throws a TypeError for any other object). */
function passesBrandCheck(getter: (this: never) => unknown, x: unknown): boolean {
  try {
    getter.call(x as never);
    return true;
  } catch {
    return false;
  }
}

function builtinGetter<T, R>(proto: object, key: PropertyKey): (this: T) => R {
  const get = Object.getOwnPropertyDescriptor(proto, key)?.get;
  if (get === undefined) throw new Error(`unix-ancillary: the runtime has no built-in getter for ${String(key)}`);
  return get as (this: T) => R;
}

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
// `getter.call(x)`: JSC inlines it (≈5 ns); a bound uncurried form costs ≈20 ns per read on the hot path.
// Only a replaced Function.prototype.call (a global monkeypatch, not a caller object) could intercept it.
const taByteLength = builtinGetter<ArrayBufferView, number>(TypedArrayPrototype, "byteLength");
const taByteOffset = builtinGetter<ArrayBufferView, number>(TypedArrayPrototype, "byteOffset");
const taBuffer = builtinGetter<ArrayBufferView, ArrayBufferLike>(TypedArrayPrototype, "buffer");
const taName = builtinGetter<unknown, string | undefined>(TypedArrayPrototype, Symbol.toStringTag);
const dvByteLength = builtinGetter<DataView, number>(DataView.prototype, "byteLength");
const dvByteOffset = builtinGetter<DataView, number>(DataView.prototype, "byteOffset");
const dvBuffer = builtinGetter<DataView, ArrayBufferLike>(DataView.prototype, "buffer");
const abResizable = builtinGetter<ArrayBuffer, boolean>(ArrayBuffer.prototype, "resizable");
const abByteLength = builtinGetter<ArrayBuffer, number>(ArrayBuffer.prototype, "byteLength");
const sabByteLength = typeof SharedArrayBuffer === "undefined" ? null : builtinGetter<SharedArrayBuffer, number>(SharedArrayBuffer.prototype, "byteLength");

// AbortSignal listeners are added and removed through EventTarget's own methods: a signal whose
// add/removeEventListener was overridden (an own property) would otherwise run caller code inside the
// reactor's close hook, which runs in the middle of a library close.
const etAddEventListener = EventTarget.prototype.addEventListener;
const etRemoveEventListener = EventTarget.prototype.removeEventListener;
const abortedGetter = builtinGetter<AbortSignal, boolean>(AbortSignal.prototype, "aborted");

/** `signal.addEventListener("abort", listener, { once: true })` through the built-in method. */
export function addAbortListener(signal: AbortSignal, listener: () => void): void {
  etAddEventListener.call(signal, "abort", listener, { once: true });
}
/** `signal.removeEventListener("abort", listener)` through the built-in method. */
export function removeAbortListener(signal: AbortSignal, listener: () => void): void {
  etRemoveEventListener.call(signal, "abort", listener);
}
/** Whether `x` is a genuine AbortSignal (brand check: an object made from its prototype fails). */
export function isAbortSignal(x: unknown): x is AbortSignal {
  return passesBrandCheck(abortedGetter, x);
}

/** %TypedArray%.prototype.byteLength (throws TypeError for anything that is not a typed array). */
export function viewByteLength(v: ArrayBufferView): number {
  return taByteLength.call(v);
}
/** %TypedArray%.prototype.byteOffset. */
export function viewByteOffset(v: ArrayBufferView): number {
  return taByteOffset.call(v);
}
/** %TypedArray%.prototype.buffer: materialises the ArrayBuffer (which may move a small view's storage). */
export function viewBuffer(v: ArrayBufferView): ArrayBufferLike {
  return taBuffer.call(v);
}
/** %TypedArray%.prototype[Symbol.toStringTag]: the element type's name, or undefined for a non-typed-array (the brand check). */
export function typedArrayName(x: unknown): string | undefined {
  return taName.call(x);
}

const Uint8ArrayPrototype = Uint8Array.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const isView = ArrayBuffer.isView;

/**
 * Whether `x` is a Uint8Array whose prototype is Uint8Array.prototype (no subclass). The engine still
 * reads its length and offset through the built-in getters, so an own accessor on it changes nothing.
 */
export function isPlainUint8Array(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array && getPrototypeOf(x) === Uint8ArrayPrototype;
}

/** Whether `x` is an ArrayBuffer (brand check: a subclass or a spoofed prototype cannot pass or hide it). */
export function isArrayBuffer(x: unknown): x is ArrayBuffer {
  return passesBrandCheck(abByteLength, x);
}

/** Whether `x` is a SharedArrayBuffer (brand check, as isArrayBuffer). */
export function isSharedArrayBuffer(x: unknown): x is SharedArrayBuffer {
  return sabByteLength !== null && passesBrandCheck(sabByteLength, x);
}

/** Whether `b` is a resizable ArrayBuffer (false for a SharedArrayBuffer). */
export function isResizable(b: ArrayBufferLike): boolean {
  return isArrayBuffer(b) && abResizable.call(b);
}

/**
 * A plain Uint8Array over exactly the bytes an ArrayBufferView covers, located through the built-in
 * getters (a subclass's or an own accessor's answers are never consulted), or null for a non-view.
 * A plain Uint8Array is returned as is.
 */
export function plainBytesOfView(x: unknown): Uint8Array | null {
  if (isPlainUint8Array(x)) return x;
  if (typedArrayName(x) !== undefined) {
    const v = x as ArrayBufferView;
    return new Uint8Array(viewBuffer(v), viewByteOffset(v), viewByteLength(v));
  }
  if (isView(x)) {
    // a view that is not a typed array is a DataView
    const v = x as DataView;
    return new Uint8Array(dvBuffer.call(v), dvByteOffset.call(v), dvByteLength.call(v));
  }
  return null;
}
