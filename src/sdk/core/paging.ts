/**
 * Keyset pagination as every list of the REST API has it: a page of `data` and an opaque
 * `next_page_token`, empty on the last page; the next page is asked for with
 * `page_token`.
 */

/**
 * One page of a list, exactly as the wire has it. Every list method's return type is
 * checked against the generated response type of its operation, so this stays the
 * contract's shape.
 */
export interface Page<T> {
  data: T[];
  next_page_token: string;
}

/** Every item of every page, fetching the next page only when the previous one is used up; starts at `firstToken` (the caller's `page_token`) if given. */
export async function* listAll<T>(list: (pageToken: string | undefined) => Promise<Page<T>>, firstToken: string | undefined): AsyncGenerator<T, void, undefined> {
  let token = firstToken;
  for (;;) {
    const page = await list(token);
    yield* page.data;
    if (!page.next_page_token) return;
    token = page.next_page_token;
  }
}
