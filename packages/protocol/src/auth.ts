/**
 * Request and response bodies of the login and session routes (`/auth/*`), and the
 * Wafer2-compatible ones (`/weapp/*`).
 */

/** `POST /auth/login`. */
export interface LoginRequest {
  /** The code from `wx.login`; single use, valid five minutes. */
  code: string;
  /** Which app; else the `X-WX-AppId` header, the Referer, or the only configured app. */
  appid?: string;
  /** From `wx.getUserProfile` / `wx.getUserInfo`, to save the profile with the login. */
  encryptedData?: string;
  iv?: string;
  rawData?: string;
  signature?: string;
}

/** The profile fields WeChat gives in user data (all optional; newer clients anonymise them). */
export interface UserProfile {
  nickName?: string;
  avatarUrl?: string;
  gender?: number;
  language?: string;
  city?: string;
  province?: string;
  country?: string;
}

/** A user as the server keeps it. Timestamps are epoch milliseconds. */
export interface UserInfo {
  openid: string;
  unionid?: string;
  profile?: UserProfile;
  phoneNumber?: string;
  firstSeenAt: number;
  lastSeenAt: number;
}

export interface LoginResponse {
  /** Send as `Authorization: Bearer <token>`. */
  token: string;
  /** When the session ends if it is not used (epoch ms); use extends it up to the absolute lifetime. */
  expiresAt: number;
  openid: string;
  unionid?: string;
  user?: UserInfo;
}

/** `GET /auth/session`. */
export interface SessionResponse {
  appid: string;
  openid: string;
  unionid?: string;
  expiresAt: number;
  user?: UserInfo;
}

/** Wafer2's user info shape (camel-cased as its SDK expects). */
export interface WaferUserInfo {
  openId: string;
  unionId?: string;
  nickName?: string;
  avatarUrl?: string;
  gender?: number;
  language?: string;
  city?: string;
  province?: string;
  country?: string;
}

/** `GET|POST /weapp/login` success. */
export interface WaferLoginResponse {
  code: 0;
  data: { skey: string; userinfo: WaferUserInfo };
}

/** Wafer2's error shape for an invalid session (HTTP 401). */
export interface WaferErrorResponse {
  code: -1;
  error: string;
}
