// A Stripe list shown a page at a time (runs, exceptions, disputes): the API's own cursor
// (`starting_after`), a pager under the page, a redraw only when the page changed, only the
// latest read drawn, and, for a live list, its first page read again every few seconds.

import { List } from "./api";
import { errorNotice, mount, pager, poll } from "./dom";

type Drawn = Node | string | null | (Node | string | null)[];

export interface Pages {
  /** Read the page shown again (after its filters changed, from the first page: `first`). */
  reload: (first?: boolean) => Promise<void>;
  /** Stop reading a live list (the router calls it when the page is left). */
  stop: () => void;
}

export function pages<T extends { id: string }>(
  el: HTMLElement,
  read: (after: string | undefined) => Promise<List<T>>,
  draw: (page: List<T>) => Drawn,
  liveMs?: number,
): Pages {
  let after: string | undefined;
  let lastStamp = "";
  let loads = 0;

  async function reload(first = false): Promise<void> {
    if (first) after = undefined;
    // A filter or page changed while an earlier read was on its way: only the latest is drawn.
    const mine = ++loads;
    let page: List<T>;
    try {
      page = await read(after);
    } catch (error) {
      if (mine === loads) mount(el, errorNotice(error));
      lastStamp = "";
      return;
    }
    const stamp = JSON.stringify([after, page]);
    if (mine !== loads || stamp === lastStamp) return;
    lastStamp = stamp;
    const go = (next?: string) => {
      after = next;
      void reload();
    };
    mount(el, draw(page), pager(after, page.has_more, page.data.at(-1)?.id, go));
  }

  // Only the first page is live: a later page stays still while someone reads it. A list that
  // is not live is read when its owner says (a run's exceptions, once the run has ended).
  const stop = liveMs ? poll(() => (after && lastStamp ? Promise.resolve() : reload()), liveMs) : () => undefined;
  return { reload, stop };
}
