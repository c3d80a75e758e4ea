/**
 * The file types minigate can recognise by their first bytes (`files/` sniffs them; the
 * `files.types` schema offers exactly these). Kept here, below both, so the schema knows the list
 * without importing the files feature.
 */

export interface FileType {
  mime: string;
  /** Extensions, the usual one first. */
  ext: string[];
  /** Shown in a page (inline) rather than downloaded (attachment). */
  media: boolean;
}

const TYPES: readonly FileType[] = [
  { mime: 'image/jpeg', ext: ['jpg', 'jpeg'], media: true },
  { mime: 'image/png', ext: ['png'], media: true },
  { mime: 'image/gif', ext: ['gif'], media: true },
  { mime: 'image/webp', ext: ['webp'], media: true },
  { mime: 'image/bmp', ext: ['bmp'], media: true },
  { mime: 'image/heic', ext: ['heic', 'heif'], media: true },
  { mime: 'video/quicktime', ext: ['mov'], media: true },
  { mime: 'audio/mp4', ext: ['m4a'], media: true },
  { mime: 'video/mp4', ext: ['mp4'], media: true },
  { mime: 'audio/mpeg', ext: ['mp3'], media: true },
  { mime: 'audio/aac', ext: ['aac'], media: true },
  { mime: 'audio/wav', ext: ['wav'], media: true },
  // WeChat's voice recordings (silk v3).
  { mime: 'audio/silk', ext: ['silk'], media: false },
  { mime: 'application/pdf', ext: ['pdf'], media: false },
  // Office documents (docx, xlsx, pptx) are zip files; they are stored as zip.
  { mime: 'application/zip', ext: ['zip', 'docx', 'xlsx', 'pptx'], media: false },
];

/** Every type minigate can recognise, by MIME type. */
export const KNOWN_TYPES: ReadonlyMap<string, FileType> = new Map(TYPES.map((t) => [t.mime, t]));
