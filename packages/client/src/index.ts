/**
 * minigate-client: the mini program side of minigate — login, requests with the session,
 * uploads and downloads, channels (WebSocket rooms), the phone number. No dependencies; ES2017.
 *
 *   const { createClient } = require('minigate-client');
 *   const client = createClient({ baseUrl: 'https://api.example.com' });
 *   const res = await client.request({ url: '/api/orders' });
 */
export { createClient } from './client.js';
export type { ClientOptions, MinigateClient, Session, RequestOptions, Response, UploadOptions, DownloadOptions, FileInfo, Task, TaskHandle, NoCallbacks, Callbacks, PayResult } from './client.js';
export { createChannel } from './channel.js';
export type { Channel, ChannelOptions, ChannelEvents, ChannelMessage, ChannelState } from './channel.js';
export { MinigateError } from './errors.js';
export type { Wx, WxSocketTask, PaymentParams } from './wx.js';
