/**
 * The app's subscribe message templates, as WeChat lists them (GET /wxaapi/newtmpl/gettemplate,
 * docs/wechat-api.md §8.3): id, kind (type 2 one-time, 3 long-term) and keywords (from the
 * content's `{{thing1.DATA}}`). Kept for a while per app; an unknown id makes one early refresh.
 */
import type { Clock } from '../core/index.js';
import type { Gateway } from '../gateway/index.js';

export const TEMPLATES_CACHE_MS = 10 * 60_000;
/** An id not in the list fetches it again, at most this often (a new template is seen soon, a typo costs little). */
export const TEMPLATES_REFRESH_MIN_MS = 30_000;

export interface Template {
  id: string;
  kind: 'one-time' | 'long-term';
  keywords: string[];
  title: string;
}

export interface TemplateList {
  /** The template, or null when the app has none with that id. */
  get(appid: string, templateId: string): Promise<Template | null>;
}

/** `{{thing1.DATA}}` → `thing1`, in order, once each. */
export function keywordsOf(content: string): string[] {
  const seen = new Set<string>();
  for (const match of content.matchAll(/\{\{\s*([A-Za-z_]+\d*)\.DATA\s*\}\}/g)) seen.add(match[1]!);
  return [...seen];
}

export function createTemplateList(deps: { gateway: Gateway; clock: Clock }): TemplateList {
  const cache = new Map<string, { at: number; templates: Map<string, Template> }>();
  const loading = new Map<string, Promise<Map<string, Template>>>();

  async function load(appid: string): Promise<Map<string, Template>> {
    const body = await deps.gateway.call<{ data?: unknown }>(appid, { path: '/wxaapi/newtmpl/gettemplate', method: 'GET' });
    const templates = new Map<string, Template>();
    for (const item of Array.isArray(body.data) ? body.data : []) {
      const row = item as { priTmplId?: unknown; type?: unknown; content?: unknown; title?: unknown };
      if (typeof row.priTmplId !== 'string') continue;
      templates.set(row.priTmplId, {
        id: row.priTmplId,
        kind: Number(row.type) === 3 ? 'long-term' : 'one-time',
        keywords: keywordsOf(typeof row.content === 'string' ? row.content : ''),
        title: typeof row.title === 'string' ? row.title : '',
      });
    }
    cache.set(appid, { at: deps.clock.now(), templates });
    return templates;
  }

  /** One fetch at a time per app: concurrent sends share it. */
  function fresh(appid: string): Promise<Map<string, Template>> {
    let pending = loading.get(appid);
    if (!pending) {
      pending = load(appid).finally(() => loading.delete(appid));
      loading.set(appid, pending);
    }
    return pending;
  }

  return {
    async get(appid, templateId) {
      const entry = cache.get(appid);
      const age = entry ? deps.clock.now() - entry.at : Infinity;
      if (!entry || age >= TEMPLATES_CACHE_MS) return (await fresh(appid)).get(templateId) ?? null;
      const found = entry.templates.get(templateId);
      if (found) return found;
      return age >= TEMPLATES_REFRESH_MIN_MS ? ((await fresh(appid)).get(templateId) ?? null) : null;
    },
  };
}
