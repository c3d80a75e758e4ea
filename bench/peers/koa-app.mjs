// The business service of the stack bench: a Koa app that answers GET /api/items for the caller.
// How it knows the caller is the one thing that differs between the two stacks:
//
//   node koa-app.mjs lookup <mysql url> <table>   behind nginx: the session token (Bearer) is
//       looked up in MariaDB (mysql2 pool) on every request, as such an app does on its own;
//   node koa-app.mjs trust <upstream secret>      behind minigate: the identity headers minigate
//       signed are checked (HMAC, as docs/upstream-identity.md says) and used; no database.
import { createHmac, timingSafeEqual } from 'node:crypto';
import Koa from 'koa';
import mysql from 'mysql2/promise';

const [, , mode, ...rest] = process.argv;
const app = new Koa();

if (mode === 'lookup') {
  const [url, table] = rest;
  const pool = mysql.createPool({ uri: url, connectionLimit: 16 });
  app.use(async (ctx, next) => {
    const token = (ctx.get('authorization').match(/^Bearer (.+)$/) ?? [])[1];
    const [found] = token ? await pool.execute(`SELECT openid FROM ${table} WHERE token = ? AND expires_at > ?`, [token, Date.now()]) : [[]];
    if (found.length === 0) ctx.throw(401, 'no session');
    ctx.state.openid = found[0].openid;
    await next();
  });
} else if (mode === 'trust') {
  const [secret] = rest;
  app.use(async (ctx, next) => {
    const h = (name) => ctx.get(name);
    const timestamp = Number(h('x-minigate-timestamp'));
    const payload = ['v1', h('x-minigate-timestamp'), h('x-minigate-appid'), h('x-minigate-openid'), h('x-minigate-unionid'), h('x-minigate-session')].join('\n');
    const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(payload).digest('hex')}`);
    const given = Buffer.from(h('x-minigate-signature'));
    if (!(Math.abs(Date.now() / 1000 - timestamp) <= 300) || given.length !== expected.length || !timingSafeEqual(given, expected)) ctx.throw(401, 'not from minigate');
    ctx.state.openid = h('x-minigate-openid');
    await next();
  });
} else {
  console.error('usage: koa-app.mjs lookup <mysql url> <table> | trust <upstream secret>');
  process.exit(2);
}

app.use((ctx) => {
  ctx.body = { openid: ctx.state.openid, items: [1, 2, 3] };
});
const server = app.listen(0, '127.0.0.1', () => console.log(`koa http://127.0.0.1:${server.address().port}`));
server.keepAliveTimeout = 60_000;
