/** Wire types of the Jan Media API (snake_case, exactly as the service sends them). */

/** Answer to every ingest path: data URL, remote URL, multipart upload and direct-upload completion. */
export interface MediaObject {
  id: string;
  mime: string;
  bytes: number;
  sha256: string;
  /** `true` when the same owner had already stored identical bytes: the id is the earlier one. */
  deduped: boolean;
  /** Absolute URL of the object (read by llm-api). */
  url: string;
  /** Short-lived signed URL (read by the web app). */
  presigned_url: string;
  /** Seconds `presigned_url` stays valid. */
  expires_in: number;
  [key: string]: unknown;
}

export type IngestSource = { type: 'data_url'; data_url: string } | { type: 'remote_url'; url: string };

export interface IngestParams {
  source: IngestSource;
  filename?: string;
}

export type UploadMethod = 'PUT' | 'POST';

export interface PrepareUploadParams {
  mime_type: string;
  /** Exact size; the service refuses completion when the uploaded object differs. */
  bytes?: number;
  /** Lowercase hex SHA-256 of the bytes; verified on completion. */
  sha256?: string;
  method?: UploadMethod;
}

export interface PreparedUpload {
  id: string;
  /** Absolute URL to send the bytes to (usually a signed bucket URL). */
  upload_url: string;
  mime_type: string;
  expires_in: number;
  method: UploadMethod;
  /** Headers the upload request must carry (they are part of the signature). */
  headers: Record<string, string>;
  /** Form fields that precede the file in a POST (policy) upload. */
  fields?: Record<string, string>;
  [key: string]: unknown;
}

export type ResolveMode = 'url' | 'inline';

export interface ResolvePayloadOptions {
  /** `url` (default): short-lived URLs; `inline`: `data:<mime>;base64,...` for providers that cannot fetch. */
  mode?: ResolveMode;
  /**
   * Leave placeholders the service cannot resolve in place instead of failing the call; their ids
   * come back in `unresolved` ({@link MediaResource.resolvePayloadResult}).
   */
  keepUnresolved?: boolean;
}

/** {@link MediaResource.resolvePayloadResult}'s answer. */
export interface ResolvePayloadResult<T> {
  /** A copy of the payload with its placeholders replaced. */
  payload: T;
  /**
   * Ids whose placeholders were left as they were (missing, pending, someone else's, malformed).
   * Only ever non-empty with `keepUnresolved: true`; otherwise such ids fail the call.
   */
  unresolved: string[];
}

export interface ResolvedMedia {
  id: string;
  presigned_url: string;
  expires_at: string;
  [key: string]: unknown;
}

export interface MediaMetadata {
  id: string;
  mime: string;
  bytes: number;
  sha256: string;
  status: string;
  pinned: boolean;
  created_at: string;
  retention_until: string | null;
  filename: string | null;
  [key: string]: unknown;
}

export interface PresignedUrl {
  id: string;
  url: string;
  expires_in: number;
  expires_at: string;
  [key: string]: unknown;
}

export interface PresignOptions {
  /** Ask for `Content-Disposition: attachment` on the signed URL. */
  download?: boolean;
}

export interface Usage {
  /** Whose usage this is (the acting user, or the owner an admin asked about). */
  owner?: string;
  objects: number;
  bytes: number;
  /** `null` when the owner has no quota. */
  quota_objects: number | null;
  quota_bytes: number | null;
  [key: string]: unknown;
}

/** One entry of the audit trail, as the admin describe endpoint returns it. */
export interface AuditEvent {
  /** e.g. `media.ingest`, `media.read`, `media.purge`, `media.reissue`. */
  action?: string;
  /** `success`, `denied` or `failure`. */
  outcome?: string;
  /** `<actor_kind>:<actor_id>`. */
  actor?: string;
  actor_kind?: string;
  actor_id?: string;
  at?: string;
  /** The error code when the outcome is not a success. */
  reason_code?: string | null;
  request_id?: string | null;
  trace_id?: string | null;
  [key: string]: unknown;
}

/** Everything an operator may see about one object (admin only). */
export interface AdminMediaDescription extends Partial<MediaMetadata> {
  id: string;
  owner?: string | null;
  storage_provider?: string;
  storage_key?: string;
  original_sha256?: string | null;
  /** Set while a deletion whose removal failed waits for its retry. */
  claimed_at?: string | null;
  events?: AuditEvent[];
  [key: string]: unknown;
}

export interface AdminPurgeParams {
  ids?: string[];
  /** Purge every object past its retention (and not pinned). */
  expired?: boolean;
  owner?: string;
  /** Report what would go without deleting anything. Defaults to `true`: deleting needs an explicit `false`. */
  dryRun?: boolean;
}

export interface AdminPurgeResult {
  /** Ids deleted (or, in a dry run, that would be). */
  purged: string[];
  count: number;
  dry_run?: boolean;
  /** True when the service's per-call cap stopped the purge early: call again for the rest. */
  truncated?: boolean;
  /** Objects the storage refused to delete (`code`, e.g. `storage_unavailable`); the retention sweep retries them. */
  failed?: Array<{ id: string; code: string }>;
  [key: string]: unknown;
}

export interface AdminReissueResult {
  id: string;
  url: string;
  expires_in?: number;
  expires_at: string;
  [key: string]: unknown;
}

export interface AdminListParams {
  owner?: string;
  cursor?: string;
  limit?: number;
}

export interface AdminMediaListItem extends Partial<MediaMetadata> {
  id: string;
  owner?: string | null;
  [key: string]: unknown;
}

export interface AdminMediaListResponse {
  items: AdminMediaListItem[];
  next_cursor: string | null;
  [key: string]: unknown;
}
