/**
 * The progress bar `valence cancel` draws on stderr while a long cancel runs (issue 13): the
 * endpoint answers 202 for a cancel it did not finish within its budget, and the client then
 * polls the request; each poll's progress redraws the bar. On a terminal the bar redraws in
 * place; elsewhere (a log, CI) one line is written per change of step, so logs stay short.
 * stdout keeps only the report, so `--json` output stays parseable.
 */
import type { CancelProgress } from '../client/cancel.ts';

/** Width of the bar itself, in characters. */
const BAR_WIDTH = 30;

/** One line of the bar: `[#######-----]  4,000/20,000 ending not-started`. */
export function renderCancelProgress(progress: CancelProgress): string {
  const p = progress.progress;
  if (!p || p.total === 0) return `cancel ${progress.requestId}: ${progress.state === 'DONE' ? 'done' : 'accepted, working'}${progress.lastError ? ` (retrying after ${progress.lastError})` : ''}`;
  const share = Math.max(0, Math.min(1, p.done / p.total));
  const filled = Math.round(share * BAR_WIDTH);
  const count = `${p.done.toLocaleString('en-US')}/${p.total.toLocaleString('en-US')}`;
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${count} ${p.phase}${progress.lastError ? ` (retrying after ${progress.lastError})` : ''}`;
}

/** Writes the bar to `stream`; call `done()` before printing the report. */
export function cancelProgressBar(stream: NodeJS.WritableStream & { isTTY?: boolean }): { readonly onProgress: (progress: CancelProgress) => void; done(): void } {
  let drawn = false;
  let last = '';
  return {
    onProgress: (progress) => {
      const line = renderCancelProgress(progress);
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${line}`);
        drawn = true;
      } else {
        // One line per step (not per poll) in a log.
        const step = `${progress.state} ${progress.progress?.phase ?? ''}`;
        if (step !== last) stream.write(`${line}\n`);
        last = step;
      }
    },
    done: () => {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}
