const { createClient } = require('./utils/minigate.js');

App({
  globalData: {
    // Where minigate is: `npx minigate start -c examples/chatroom/minigate.yaml` listens here.
    // Production: 'https://api.example.com' (a 服务器域名 with a real certificate).
    baseUrl: 'http://127.0.0.1:8080',
    // Local only: `minigate sandbox` plays WeChat, so it mints the login codes (a code from
    // wx.login is WeChat's, and the sandbox cannot exchange it). Production: null, and wx.login
    // is used. The appid is the one in minigate.yaml.
    sandbox: { url: 'http://127.0.0.1:9900', appid: 'wxchatroom00000000' },
  },

  onLaunch() {
    this.minigate = createClient({ baseUrl: this.globalData.baseUrl, sandbox: this.globalData.sandbox });
  },
});
