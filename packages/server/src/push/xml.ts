/**
 * The XML of WeChat pushes: `<xml>` with elements whose text is CDATA or plain (numbers), maybe
 * nested or repeated (lists). Nothing else is accepted: no attributes, no DOCTYPE or entities
 * (XXE), no processing instructions beyond a leading declaration.
 */
export class XmlError extends Error {}

export type XmlValue = string | number | XmlObject | XmlValue[];
export interface XmlObject {
  [name: string]: XmlValue;
}

const MAX_DEPTH = 16;

export function parsePushXml(text: string): XmlObject {
  if (/<!(DOCTYPE|ENTITY)/i.test(text)) throw new XmlError('DOCTYPE and entities are not accepted');
  let at = 0;
  const source = text.replace(/^\uFEFF/, '').trim().replace(/^<\?xml[^?]*\?>\s*/, '');

  const fail = (what: string): never => {
    throw new XmlError(`${what} at ${at}`);
  };

  function element(depth: number): { name: string; value: XmlValue } {
    if (depth > MAX_DEPTH) fail('too deep');
    const open = /^<([A-Za-z_][\w.-]*)\s*(\/?)>/.exec(source.slice(at));
    if (!open) return fail('expected an element');
    at += open[0].length;
    const name = open[1]!;
    if (open[2] === '/') return { name, value: '' };
    const children: [string, XmlValue][] = [];
    let text = '';
    let cdata = false;
    for (;;) {
      skipSpaceIfElements(children.length > 0);
      if (source.startsWith('<![CDATA[', at)) {
        const end = source.indexOf(']]>', at);
        if (end === -1) fail('unterminated CDATA');
        text += source.slice(at + 9, end);
        cdata = true;
        at = end + 3;
      } else if (source.startsWith(`</${name}>`, at)) {
        at += name.length + 3;
        break;
      } else if (source.startsWith('</', at)) {
        fail(`mismatched closing tag in <${name}>`);
      } else if (source[at] === '<') {
        const child = element(depth + 1);
        children.push([child.name, child.value]);
      } else {
        const next = source.indexOf('<', at);
        if (next === -1) fail(`unterminated <${name}>`);
        text += decodeEntities(source.slice(at, next));
        at = next;
      }
    }
    if (children.length) {
      const object: XmlObject = {};
      for (const [childName, value] of children) {
        const existing = object[childName];
        if (existing === undefined) object[childName] = value;
        else object[childName] = Array.isArray(existing) ? [...existing, value] : [existing, value];
      }
      return { name, value: object };
    }
    const trimmed = cdata ? text : text.trim();
    return { name, value: !cdata && /^-?\d{1,15}$/.test(trimmed) ? Number(trimmed) : trimmed };
  }

  function skipSpaceIfElements(between: boolean): void {
    if (!between) return;
    while (at < source.length && /\s/.test(source[at]!)) at++;
  }

  const root = element(0);
  if (root.name !== 'xml') throw new XmlError('the root element must be <xml>');
  if (source.slice(at).trim() !== '') throw new XmlError('content after </xml>');
  return typeof root.value === 'object' && !Array.isArray(root.value) ? root.value : {};
}

function decodeEntities(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);/gi, (match, entity: string) => {
    const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
    if (named[entity.toLowerCase()]) return named[entity.toLowerCase()]!;
    const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
    return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : match;
  });
}
