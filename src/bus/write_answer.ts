import { FrameTooLargeError } from "../errors.ts";
import { envelopeBytes, type EnvelopeFields, writeEnvelope } from "./fast_envelope.ts";
import type { FrameWriter } from "./frame_writer.ts";
import { envelopeWithHeaders } from "./headers.ts";
import type { Answer } from "./link.ts";
import { encodeMessage, type ErrorRecord, Kind, toErrorRecord } from "./protocol.ts";

/**
 * Queues the answer to request `m` (request `m.r` of peer `m.f`) on
 * `writer`: a response envelope, or an error response when the answer is an
 * error or does not fit a frame. Answers are not refused for a full queue:
 * the requester asked for them, and their number is bounded by the requests
 * outstanding. Used by a peer's hub link and by the hub for its own peer.
 */
export function writeAnswer(
  writer: FrameWriter,
  from: number,
  m: { f: number; r: number },
  maxFrameBytes: number,
  answer: Answer,
): void {
  let error: ErrorRecord;
  if ("data" in answer) {
    const fields: EnvelopeFields = [["f", from], ["t", m.f], ["r", m.r], ["d", answer.data]];
    let size: number;
    if (answer.headers !== undefined) {
      // The fast path writes flat maps only: headers go through the general encoder.
      const body = envelopeWithHeaders("p", fields, answer.headers);
      size = body.byteLength;
      if (size <= maxFrameBytes) return void writer.push(body);
    } else {
      size = envelopeBytes(fields);
      if (size <= maxFrameBytes) return void writeEnvelope(writer, "p", fields, size);
    }
    error = toErrorRecord(new FrameTooLargeError(`Response of ${size} bytes exceeds maxFrameBytes ${maxFrameBytes}`));
  } else error = answer.error;
  const frame = { k: Kind.ErrorResponse, f: from, t: m.f, r: m.r, e: error };
  let body = encodeMessage(frame);
  if (body.byteLength > maxFrameBytes) {
    body = encodeMessage({
      k: Kind.ErrorResponse,
      f: from,
      t: m.f,
      r: m.r,
      e: toErrorRecord(
        new FrameTooLargeError(`Response of ${body.byteLength} bytes exceeds maxFrameBytes ${maxFrameBytes}`),
      ),
    });
  }
  writer.push(body);
}
