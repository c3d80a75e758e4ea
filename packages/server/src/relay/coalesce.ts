/**
 * A relayed answer on its way to the phone. The relay link's TLS hands HTTP/2 DATA to the stream
 * in 16 KiB pieces (one TLS record each), one callback per piece; piped one by one, each piece is
 * its own TLS record and its own write(2) to the phone (bench/tunnel.mjs: ~6,400 writes per
 * 100 MiB). Here the pieces that arrive in one turn of the event loop are written together: the
 * phone's socket is corked from the first piece until setImmediate, so they leave in one writev.
 *
 * Back-pressure as with pipe(), per batch rather than per piece: when the phone's side still holds
 * its high-water mark or more after a batch, the source is paused until 'drain'. A batch is
 * bounded by what the link let arrive in one turn, i.e. by the stream's HTTP/2 window (1 MiB).
 */
import type { Readable, Writable } from 'node:stream';

/** Pipes `source` into `res` (ending it with the source), one write per event-loop turn. */
export function pipeCoalesced(source: Readable, res: Writable): void {
  let pending: NodeJS.Immediate | undefined;
  const flush = () => {
    pending = undefined;
    res.uncork();
    // A write that returned false while corked has set 'drain' to come once res is empty.
    if (res.writableLength >= res.writableHighWaterMark && !res.destroyed) {
      source.pause();
      res.once('drain', () => source.resume());
    }
  };
  const onData = (chunk: Buffer) => {
    if (!pending) {
      res.cork();
      pending = setImmediate(flush);
    }
    res.write(chunk);
  };
  source.on('data', onData);
  source.once('end', () => {
    // The last batch leaves with the end (end() uncorks), not one turn later.
    clearImmediate(pending);
    res.end();
  });
  res.once('close', () => source.off('data', onData));
}
