/** A Set of strings that forgets its oldest entries past `limit` (insertion order). */
export class BoundedSet extends Set<string> {
  private readonly limit: number;

  constructor(limit: number) {
    super();
    this.limit = limit;
  }

  override add(value: string): this {
    super.add(value);
    if (this.size > this.limit) this.delete(this.values().next().value!);
    return this;
  }
}
