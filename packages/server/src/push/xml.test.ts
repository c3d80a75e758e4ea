import { describe, expect, it } from 'vitest';
import { parsePushXml, XmlError } from './xml.js';

describe('parsePushXml', () => {
  it('reads CDATA and plain text, numbers up to 15 digits, nesting and repeats', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
      <xml>
        <ToUserName><![CDATA[gh_1]]></ToUserName>
        <CreateTime>1714037059</CreateTime>
        <MsgId>24000000000000001</MsgId>
        <Content><![CDATA[a <b> & 你好 ]]></Content>
        <Plain> x &amp; y &#20320; </Plain>
        <Empty/>
        <List><item><id>1</id></item><item><id>2</id></item></List>
      </xml>`;
    expect(parsePushXml(xml)).toEqual({
      ToUserName: 'gh_1',
      CreateTime: 1714037059,
      MsgId: '24000000000000001',
      Content: 'a <b> & 你好 ',
      Plain: 'x & y 你',
      Empty: '',
      List: { item: [{ id: 1 }, { id: 2 }] },
    });
  });

  it('keeps a CDATA number as text (a code or id must not lose its zeros)', () => {
    expect(parsePushXml('<xml><Code><![CDATA[0012]]></Code></xml>')).toEqual({ Code: '0012' });
  });

  it('refuses DOCTYPE and entities, other roots, broken or trailing markup, and deep nesting', () => {
    const bad = [
      '<!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>',
      '<root><A>1</A></root>',
      '<xml><A>1</B></xml>',
      '<xml><A><![CDATA[x</A></xml>',
      '<xml><A>1</A></xml><xml/>',
      '<xml><A x="1">1</A></xml>',
      `<xml>${'<a>'.repeat(40)}${'</a>'.repeat(40)}</xml>`,
      '',
    ];
    for (const text of bad) expect(() => parsePushXml(text), text).toThrow(XmlError);
  });
});
