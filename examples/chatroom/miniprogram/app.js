const { createClient } = require('minigate-client');

App({
  globalData: {
    // Where minigate is: `npm start -- --appid wxchatroom00000000` (minigate dev) listens here.
    // Production: 'https://api.example.com' (a 服务器域名 with a real certificate).
    baseUrl: 'http://127.0.0.1:8080',
    // Local only: the sandbox plays WeChat, so it mints the login codes (a code from wx.login is
    // WeChat's, and the sandbox cannot exchange it); minigate dev serves it at /__sandbox on its
    // own port. With `minigate start -c minigate.yaml` + `minigate sandbox --port 9900`, use
    // http://127.0.0.1:9900. Production: null, and wx.login is used.
    sandbox: { url: 'http://127.0.0.1:8080', appid: 'wxchatroom00000000' },
  },

  onLaunch() {
    const sandbox = this.globalData.sandbox;
    // minigate-client (miniprogram_npm/minigate-client) does login, the session and the channel.
    this.minigate = createClient({
      baseUrl: this.globalData.baseUrl,
      getCode: sandbox ? () => sandboxCode(sandbox) : undefined,
    });
  },
});

const SANDBOX_OPENID_KEY = 'minigate.sandboxOpenid';

/** A login code from the local sandbox (what wx.login gives), for the same user each time. */
function sandboxCode(sandbox) {
  const openid = wx.getStorageSync(SANDBOX_OPENID_KEY);
  return new Promise((resolve, reject) => {
    wx.request({
      url: sandbox.url.replace(/\/+$/, '') + '/__sandbox/login',
      method: 'POST',
      data: openid ? { appid: sandbox.appid, openid } : { appid: sandbox.appid },
      success: (res) => {
        if (res.statusCode !== 200 || !res.data || !res.data.code) return reject(new Error('the sandbox answered ' + res.statusCode));
        wx.setStorageSync(SANDBOX_OPENID_KEY, res.data.openid);
        resolve(res.data.code);
      },
      fail: (error) => reject(new Error(error.errMsg || 'sandbox login failed')),
    });
  });
}
