/** The `admin` section: the operator's web console on listen.internal (docs/admin.md). */
import { z } from 'zod';
import { duration } from './schema-types.js';

export const ADMIN_PATH_DEFAULT = '/admin/';

export const adminSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .meta({ description: 'Serve the admin console at admin.path on listen.internal (nothing is served without listen.internal unless admin.public).' }),
    path: z
      .string()
      .regex(/^\/([A-Za-z0-9_-]+\/)+$/, { error: 'expected a path such as /admin/ (starting and ending with /)' })
      .default(ADMIN_PATH_DEFAULT)
      .meta({ description: 'Where the console and its JSON API (`{path}api/…`) are served.' }),
    public: z
      .boolean()
      .default(false)
      .meta({ description: 'Also serve the console on listen.https (its cookie is then Secure). Admins still log in with password (and TOTP when set).' }),
    auditRetention: duration('Audit log entries older than this are deleted.', '1d').prefault('180d'),
    sessionIdle: duration('An admin console session unused for this long ends.', '1m').prefault('30m'),
    recordClientInfo: z
      .boolean()
      .default(true)
      .meta({ description: "Record each mini program session's client address and user agent at login, shown in the console (personal information: see docs/admin.md)." }),
    clientInfoRetention: duration('Client address and user agent of sessions are cleared this long after login.', '1d').prefault('30d'),
  })
  .prefault({})
  .meta({ description: 'The admin console (docs/admin.md).' });

export type AdminConfig = z.output<typeof adminSchema>;
