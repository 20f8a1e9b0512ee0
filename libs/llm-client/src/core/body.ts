import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { stringifyJSON } from './json.ts';

/** Anything the SDK accepts as file content. */
export type Uploadable =
  | Uint8Array
  | ArrayBuffer
  | Blob
  | Readable
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>;

/** Content whose size is known up front (what signed bucket uploads need). */
export type SizedUploadable = Uint8Array | ArrayBuffer | Blob;

/**
 * A request body that can be produced once per attempt. `replayable` is false for one-shot
 * streams: such a request is never retried, whatever the idempotency rules say.
 */
export interface BodySource {
  create(): NonNullable<RequestInit['body']>;
  replayable: boolean;
  contentType?: string;
  /** Set for streaming bodies: undici needs `duplex: 'half'` to send a ReadableStream. */
  streaming: boolean;
}

const encoder = new TextEncoder();

/** A JSON request body; written without recursion, so a payload of any depth can be sent (see core/json.ts). */
export function jsonBody(value: unknown): BodySource {
  const text = stringifyJSON(value) ?? 'null';
  return { create: () => text, replayable: true, contentType: 'application/json', streaming: false };
}

export function isSized(value: unknown): value is SizedUploadable {
  return value instanceof Uint8Array || value instanceof ArrayBuffer || value instanceof Blob;
}

export function toUint8Array(value: Uint8Array | ArrayBuffer): Uint8Array {
  return value instanceof Uint8Array ? value : new Uint8Array(value);
}

async function* iterate(value: Exclude<Uploadable, Uint8Array | ArrayBuffer | Blob>): AsyncGenerator<Uint8Array> {
  const source: AsyncIterable<unknown> =
    typeof (value as ReadableStream<Uint8Array>).getReader === 'function' &&
    !(Symbol.asyncIterator in (value as object))
      ? readerIterable(value as ReadableStream<Uint8Array>)
      : (value as AsyncIterable<unknown>);
  for await (const chunk of source) {
    if (typeof chunk === 'string') yield encoder.encode(chunk);
    else if (chunk instanceof Uint8Array) yield chunk;
    else if (chunk instanceof ArrayBuffer) yield new Uint8Array(chunk);
    else throw new TypeError('upload streams must yield Uint8Array, Buffer or string chunks');
  }
}

async function* readerIterable(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

function streamFrom(parts: () => AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = parts();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await iterator.next();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
      }
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}

/** Quotes a value for a Content-Disposition parameter the way browsers' FormData does. */
function quote(value: string): string {
  return value.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
}

export interface MultipartFile {
  field: string;
  content: Uploadable;
  filename: string;
  contentType: string;
}

/**
 * A multipart/form-data body: text fields first, then one file. Sized content is assembled in
 * memory (and can be retried); streams are piped through without buffering (and cannot).
 */
export function multipartBody(fields: Record<string, string>, file: MultipartFile): BodySource {
  const boundary = `----JanMediaClient${randomBytes(12).toString('hex')}`;
  let head = '';
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`;
  }
  head +=
    `--${boundary}\r\nContent-Disposition: form-data; name="${quote(file.field)}"; filename="${quote(file.filename)}"\r\n` +
    `Content-Type: ${file.contentType}\r\n\r\n`;
  const headBytes = encoder.encode(head);
  const tailBytes = encoder.encode(`\r\n--${boundary}--\r\n`);
  const contentType = `multipart/form-data; boundary=${boundary}`;
  const content = file.content;

  if (content instanceof Uint8Array || content instanceof ArrayBuffer) {
    const bytes = toUint8Array(content);
    const whole = new Uint8Array(headBytes.length + bytes.length + tailBytes.length);
    whole.set(headBytes, 0);
    whole.set(bytes, headBytes.length);
    whole.set(tailBytes, headBytes.length + bytes.length);
    return { create: () => whole, replayable: true, contentType, streaming: false };
  }
  if (content instanceof Blob) {
    return {
      create: () => new Blob([headBytes, content, tailBytes]),
      replayable: true,
      contentType,
      streaming: false,
    };
  }
  let used = false;
  return {
    create: () => {
      if (used) throw new TypeError('a streamed upload body can be sent only once');
      used = true;
      return streamFrom(async function* () {
        yield headBytes;
        yield* iterate(content);
        yield tailBytes;
      });
    },
    replayable: false,
    contentType,
    streaming: true,
  };
}

/** Raw body for a signed PUT to a bucket: sized content only, sent as-is. */
export function rawBody(content: SizedUploadable, contentType?: string): BodySource {
  const body = content instanceof Blob ? content : toUint8Array(content);
  return { create: () => body, replayable: true, contentType, streaming: false };
}

export async function sizedToBytes(content: SizedUploadable): Promise<Uint8Array> {
  if (content instanceof Blob) return new Uint8Array(await content.arrayBuffer());
  return toUint8Array(content);
}

