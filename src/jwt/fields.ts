/**
 * Reading parsed claims the way Go reads its structs: a field of the wrong JSON type, or a
 * missing one, is Go's zero value ("" / 0 / false / empty), never an exception.
 */

export type Obj = Record<string, unknown>;

export function asObj(v: unknown): Obj | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

export function asArr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function strField(o: Obj | undefined, k: string): string {
  const v = o?.[k];
  return typeof v === "string" ? v : "";
}

export function numField(o: Obj | undefined, k: string): number {
  const v = o?.[k];
  return typeof v === "number" ? v : 0;
}

export function boolField(o: Obj | undefined, k: string): boolean {
  return o?.[k] === true;
}

export function strList(v: unknown): string[] {
  return asArr(v).filter((e): e is string => typeof e === "string");
}
