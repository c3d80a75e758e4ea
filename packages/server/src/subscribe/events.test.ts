/** The subscribe events in both push formats, and what is not one (hostile or malformed pushes). */
import { toXml } from 'minigate-sandbox';
import { describe, expect, it } from 'vitest';
import { parsePushXml } from '../push/xml.js';
import { subscribeEventOf } from './events.js';
import { checkMessageData } from './keywords.js';
import { keywordsOf } from './templates.js';

const base = { ToUserName: 'gh_1', FromUserName: 'o_user-1', CreateTime: 1700000000, MsgType: 'event' };

describe('subscribeEventOf', () => {
  it('reads the popup list from XML (repeated <List>) and from JSON (an array, or one item)', () => {
    const items = [
      { TemplateId: 'T1', SubscribeStatusString: 'accept', PopupScene: '0' },
      { TemplateId: 'T2', SubscribeStatusString: 'reject', PopupScene: '0' },
    ];
    const xml = parsePushXml(toXml({ ...base, Event: 'subscribe_msg_popup_event', SubscribeMsgPopupEvent: { List: items } }));
    const fromXml = subscribeEventOf(xml);
    expect(fromXml).toEqual({ event: 'subscribe_msg_popup_event', openid: 'o_user-1', items: [{ templateId: 'T1', status: 'accept' }, { templateId: 'T2', status: 'reject' }] });
    expect(subscribeEventOf({ ...base, Event: 'subscribe_msg_popup_event', SubscribeMsgPopupEvent: items })).toEqual(fromXml);
    const one = parsePushXml(toXml({ ...base, Event: 'subscribe_msg_change_event', SubscribeMsgChangeEvent: { List: items[1] } }));
    expect(subscribeEventOf(one)?.items).toEqual([{ templateId: 'T2', status: 'reject' }]);
    expect(subscribeEventOf({ ...base, Event: 'subscribe_msg_change_event', List: items[0] })?.items).toEqual([{ templateId: 'T1', status: 'accept' }]);
  });

  it('reads a sent event with its 64-bit MsgID kept exactly', () => {
    const xml = parsePushXml(toXml({ ...base, Event: 'subscribe_msg_sent_event', SubscribeMsgSentEvent: { List: { TemplateId: 'T1', MsgID: '1700827132819554304', ErrorCode: 0, ErrorStatus: 'success' } } }));
    expect(subscribeEventOf(xml)?.items).toEqual([{ templateId: 'T1', status: '', msgid: '1700827132819554304', errorCode: 0 }]);
  });

  it('ignores other events, bad users, bad template ids and floods', () => {
    expect(subscribeEventOf({ ...base, Event: 'wxa_media_check' })).toBeNull();
    expect(subscribeEventOf({ ...base, MsgType: 'text', Event: 'subscribe_msg_popup_event' })).toBeNull();
    expect(subscribeEventOf({ ...base, FromUserName: '../etc', Event: 'subscribe_msg_popup_event', SubscribeMsgPopupEvent: [] })).toBeNull();
    const hostile = [{ TemplateId: 'x'.repeat(200), SubscribeStatusString: 'accept' }, { TemplateId: "T1' OR 1=1", SubscribeStatusString: 'accept' }, 'T3', null, { SubscribeStatusString: 'accept' }];
    expect(subscribeEventOf({ ...base, Event: 'subscribe_msg_popup_event', SubscribeMsgPopupEvent: hostile })?.items).toEqual([]);
    const flood = Array.from({ length: 500 }, (_, i) => ({ TemplateId: `T${i}`, SubscribeStatusString: 'accept' }));
    expect(subscribeEventOf({ ...base, Event: 'subscribe_msg_popup_event', SubscribeMsgPopupEvent: flood })?.items).toHaveLength(20);
  });
});

describe('template keywords and message data', () => {
  it('takes the keywords from the template content, in order, once', () => {
    expect(keywordsOf('订单:{{thing1.DATA}}\n时间:{{time2.DATA}}\n{{thing1.DATA}} {{ character_string12.DATA }}')).toEqual(['thing1', 'time2', 'character_string12']);
  });

  it('counts characters as people do, and checks the formats it knows', () => {
    expect(checkMessageData(['thing1'], { thing1: { value: '😀'.repeat(20) } })).toEqual({ thing1: { value: '😀'.repeat(20) } });
    expect(() => checkMessageData(['thing1'], { thing1: { value: '😀'.repeat(21) } })).toThrow(/at most 20/);
    expect(() => checkMessageData(['number3'], { number3: { value: '12a' } })).toThrow(/not a valid number/);
    expect(checkMessageData(['number3', 'phone_number4'], { number3: { value: '12.50' }, phone_number4: { value: '+86 138-0013-8000' } })).toBeTruthy();
    expect(() => checkMessageData(['thing1'], { thing1: { value: 'x', extra: 1 }, __proto__: { value: 'y' } })).not.toThrow();
    expect(() => checkMessageData(['thing1'], JSON.parse('{"thing1":{"value":"x"},"__proto__":{"value":"y"}}'))).toThrow(/__proto__/);
  });
});
