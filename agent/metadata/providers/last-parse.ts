// The last document text a provider parsed and what it became. Metadata rarely changes, and
// parsing a large document is most of a no-change refresh's CPU; comparing the text is a
// memcmp. The same snapshot object also tells the reconciler and the API that nothing changed,
// without comparing models (docs/performance.md, "The no-change refresh").
export class LastParse<T> {
  private last?: { text: string; context: string; value: T };

  /** `parse()`'s value for this text and context, or the remembered one when both are unchanged. */
  get(text: string, context: string, parse: () => T): T {
    const last = this.last;
    if (last && last.text === text && last.context === context) return last.value;
    const value = parse(); // a throw leaves the last good parse in place
    this.last = { text, context, value };
    return value;
  }
}
