/**
 * The data of a subscribe message against its template (docs/wechat-api.md §8.3): every keyword
 * of the template and no other, each `{value}` non-empty text within its type's limit. The type
 * is the keyword's name without its number (`thing1` → `thing`).
 */
import { AppError } from '../core/index.js';

/** Characters a value of each keyword type may have, as WeChat's template rules give them. */
export const KEYWORD_MAX_CHARS: Readonly<Record<string, number>> = {
  thing: 20,
  number: 32,
  letter: 32,
  symbol: 5,
  character_string: 32,
  phone_number: 17,
  car_number: 8,
  name: 10,
  phrase: 5,
  time: 32,
  date: 32,
  amount: 32,
};
/** For a type this table does not know (WeChat adds some): bounded all the same. */
export const UNKNOWN_KEYWORD_MAX_CHARS = 64;

const FORMATS: Readonly<Record<string, RegExp>> = {
  number: /^-?\d+(\.\d+)?$/,
  letter: /^[A-Za-z]+$/,
  phone_number: /^[\d+\-() ]+$/,
};

function invalid(keyword: string, rule: string): AppError {
  return new AppError('SUBSCRIBE_DATA_INVALID', { message: `data.${keyword}: ${rule}.`, details: { keyword } });
}

/** The type of a keyword: `thing1` → `thing`, `character_string12` → `character_string`. */
export function keywordType(keyword: string): string {
  return keyword.replace(/\d+$/, '');
}

/** Checks `data` against the template's keywords; returns it as WeChat takes it. */
export function checkMessageData(keywords: readonly string[], data: unknown): Record<string, { value: string }> {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw invalid('*', 'expected {"thing1": {"value": "…"}, …}');
  const given = data as Record<string, unknown>;
  const known = new Set(keywords);
  for (const key of Object.keys(given)) if (!known.has(key)) throw invalid(key, `not a keyword of this template (${keywords.join(', ')})`);
  const out: Record<string, { value: string }> = {};
  for (const keyword of keywords) {
    const entry = given[keyword];
    if (entry === undefined) throw invalid(keyword, 'missing');
    const value = typeof entry === 'object' && entry !== null ? (entry as { value?: unknown }).value : undefined;
    if (typeof value !== 'string' || value.trim() === '') throw invalid(keyword, 'expected {"value": "…"} with some text');
    const type = keywordType(keyword);
    const max = KEYWORD_MAX_CHARS[type] ?? UNKNOWN_KEYWORD_MAX_CHARS;
    // Characters as people count them (a Chinese character or an emoji is one).
    const length = [...value].length;
    if (length > max) throw invalid(keyword, `at most ${max} characters for a ${type} (got ${length})`);
    const format = FORMATS[type];
    if (format && !format.test(value)) throw invalid(keyword, `not a valid ${type}`);
    out[keyword] = { value };
  }
  return out;
}
