/**
 * The part of the mini program's `wx` API the SDK uses, typed loosely: the runtime gives it as
 * a global; tests and the playground give their own implementation.
 */

export interface WxCallbacks<T> {
  success?: (res: T) => void;
  fail?: (err: { errMsg: string }) => void;
  complete?: (res: unknown) => void;
}

export interface WxRequestTask {
  abort(): void;
}

export interface WxUploadTask extends WxRequestTask {
  onProgressUpdate?(listener: (res: { progress: number; totalBytesSent: number; totalBytesExpectedToSend: number }) => void): void;
}

export interface WxDownloadTask extends WxRequestTask {
  onProgressUpdate?(listener: (res: { progress: number; totalBytesWritten: number; totalBytesExpectedToWrite: number }) => void): void;
}

export interface WxSocketTask {
  send(options: { data: string } & WxCallbacks<unknown>): void;
  close(options?: { code?: number; reason?: string } & WxCallbacks<unknown>): void;
  onOpen(listener: (res: unknown) => void): void;
  onMessage(listener: (res: { data: string | ArrayBuffer }) => void): void;
  onClose(listener: (res: { code: number; reason: string }) => void): void;
  onError(listener: (res: { errMsg: string }) => void): void;
}

export interface WxResponse {
  data: unknown;
  statusCode: number;
  header: Record<string, string>;
}

export interface Wx {
  login(options: WxCallbacks<{ code: string }>): void;
  request(
    options: { url: string; method?: string; data?: unknown; header?: Record<string, string>; timeout?: number; dataType?: string; responseType?: string } & WxCallbacks<WxResponse>,
  ): WxRequestTask;
  uploadFile(
    options: { url: string; filePath: string; name: string; formData?: Record<string, string>; header?: Record<string, string>; timeout?: number } & WxCallbacks<{ data: string; statusCode: number }>,
  ): WxUploadTask;
  downloadFile(
    options: { url: string; header?: Record<string, string>; timeout?: number; filePath?: string } & WxCallbacks<{ tempFilePath: string; filePath?: string; statusCode: number }>,
  ): WxDownloadTask;
  connectSocket(options: { url: string; header?: Record<string, string>; protocols?: string[]; timeout?: number } & WxCallbacks<unknown>): WxSocketTask;
  getStorageSync(key: string): unknown;
  setStorageSync(key: string, value: unknown): void;
  removeStorageSync(key: string): void;
  getFileSystemManager?(): { readFileSync(path: string, encoding?: string): string | ArrayBuffer };
  /** The subscribe message popup: `{[templateId]: 'accept' | 'reject' | 'ban' | 'filter', errMsg}`. */
  requestSubscribeMessage?(options: { tmplIds: string[] } & WxCallbacks<Record<string, string>>): void;
  /** WeChat Pay's cashier: `fail` with `requestPayment:fail cancel` when the user backs out. */
  requestPayment?(options: PaymentParams & WxCallbacks<{ errMsg: string }>): void;
}

/** The five parameters of wx.requestPayment, as minigate's order API returns them (`payment`). */
export interface PaymentParams {
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: 'RSA';
  paySign: string;
}

declare const wx: Wx | undefined;

/** The runtime's `wx`, when there is one. */
export function globalWx(): Wx | undefined {
  return typeof wx === 'undefined' ? undefined : wx;
}
