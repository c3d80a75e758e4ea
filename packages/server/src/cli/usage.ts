/** Usage texts, kept apart from the commands so `--help` loads nothing else. */

export const initHelp = `minigate init [-c FILE] [--yes] [--force] [--domain NAME] [--appid WXID]
              [--secret-env NAME | --secret-file FILE] [--store sqlite|mysql://…|postgres://…]
              [--acme-email EMAIL | --cert FILE --key FILE | --pfx FILE | --jks FILE] [--upstream URL]

Writes a commented minigate.yaml (default ./minigate.yaml; -c names another) and a .env beside it
(mode 0600) for the secrets: the AppSecret (taken from the variable --secret-env names, default
WX_APP_SECRET, in init's own environment, so it never sits in your shell history), the store URL,
the keystore password (TLS_PASSWORD) and a fresh upstream secret. On a terminal it asks for what
the flags leave out; --yes asks nothing. It never overwrites either file without --force. Then it
prints the next commands and the lines for the WeChat console (开发管理 → 开发设置 → 服务器域名).
minigate start, validate and migrate read the .env beside the config (variables already set win).`;

export const devHelp = `minigate dev [--data DIR] [--port N] [--https-port N] [--sandbox-port N] [--appid WXID] [--json]

Runs minigate for local development, with no config file: SQLite in DIR (default ./.minigate),
the WeChat sandbox in-process with a registered dev app, on http://127.0.0.1:N (default 8080).
HTTPS (the dev CA) is on 8443, or on N+1 with --port N, or --https-port N; --port 0 picks free ports. --appid gives the dev app the AppID your mini program project uses.
The sandbox's control API is also at /__sandbox on minigate's own port, and the playground at
/playground/. --json prints the facts (url, playground, sandboxUrl, appid, dataDir…) as one line.
MINIGATE_* variables still apply (e.g. MINIGATE_STORE=postgres://… to use PostgreSQL).`;

export const startHelp = `minigate start [-c FILE]

Runs minigate from a config file (default: $MINIGATE_CONFIG, else ./minigate.yaml), with the
variables of a .env file beside it (those already set win). Every key
can be overridden by an environment variable MINIGATE_<KEY_PATH>, e.g. MINIGATE_STORE,
MINIGATE_LISTEN_HTTP, MINIGATE_APPS_0_SECRET. SIGTERM drains and exits.`;

export const validateHelp = `minigate validate [-c FILE]

Checks a config file without starting: prints every problem (file:line, key path, what to do)
and exits 1, or prints a summary and exits 0.`;

export const checkHelp = `minigate check URL... [--type request|socket|upload|download] [--ca FILE] [--resolve NAME:IP] [--json] [--timeout S]
minigate check -c minigate.yaml

Tells whether each URL satisfies WeChat's server-domain rules before a phone finds out: URL rules,
DNS, TCP, TLS versions, the certificate chain as served (a missing intermediate fails), hostname,
dates, iOS ATS (key, signature, ECDHE), trusted root, an HTTP request (a WebSocket upgrade for
--type socket), and the line to paste into 开发管理 → 服务器域名. With -c, every domain the config
serves. --ca trusts a private root (testing); --resolve checks a server before DNS points at it.
Exit 0: all pass (warnings allowed); 1: a check failed; 2: usage, or a server could not be reached.`;

export const migrateHelp = `minigate migrate [-c FILE]

Applies pending database migrations to the configured store and exits. (minigate start also
migrates; this is for deploy pipelines that migrate first.)`;

export const backupHelp = `minigate backup --out FILE [-c FILE] [--force]

SQLite: copies the database to FILE (0600) while minigate runs (SQLite's online backup).
MySQL/MariaDB and PostgreSQL: prints the mysqldump / pg_dump line to run (the password is read
from MYSQL_PWD / PGPASSWORD, never printed). Keep the secret key with the backup.`;

export const exportHelp = `minigate export --out FILE [-c FILE] [--force]

Writes the deployment to FILE (JSON lines, 0600): users, live sessions, file metadata, the shared
state (access tokens, ACME), pending outbox rows, and the secret key. Stored file contents are
not included. See docs/operations.md.`;

export const importHelp = `minigate import FILE [-c FILE] [--force]

Loads a minigate export into the configured store, in one transaction, and writes the secret key
to dataDir (unless the config sets secretKey, which must then be the same key). The store must be
empty; --force replaces its users, sessions, files, kv and outbox rows. Refuses a file from a
newer minigate.`;

export const sandboxHelp = `minigate sandbox [--port N] [--host H] [--app APPID:SECRET]... [--token-ttl SECONDS]

Runs the WeChat sandbox alone: a local HTTP server that answers like api.weixin.qq.com
(jscode2session, token, stable_token, checksession, getuserphonenumber) plus its control API
under /__sandbox/ (GET /__sandbox lists it). Point wechat.apiBase at it. --token-ttl gives
the apps' access tokens a shorter life than WeChat's 7200 s, to watch rotations.`;

export const adminHelp = `minigate admin add NAME [--totp] [--password-file F] [-c FILE]
minigate admin list [-c FILE]
minigate admin remove NAME [-c FILE]
minigate admin passwd NAME [--totp] [--password-file F] [-c FILE]

Manages the users of the admin console (admin.path on listen.internal). The password is asked
twice on a terminal, or read from --password-file F or the first line of standard input; at
least 10 characters. --totp also makes a TOTP secret and prints it once with its otpauth:// URI
(for an authenticator app); from then on the console asks for the 6-digit code too. remove and
passwd end the user's console sessions.`;

export const relayHelp = `minigate relay add NAME [-c FILE]
minigate relay list [-c FILE]
minigate relay revoke NAME [-c FILE]

Manages the names of the dev tunnel (docs/relay.md). add makes NAME with a new token and prints
the token once, as the last line (only its SHA-256 is kept; keep the token in a file for
minigate tunnel --token-file). One token per name, and it serves only that name. revoke removes
the name; a client connected with it is cut within relay.pingInterval.`;

export const tunnelHelp = `minigate tunnel --server https://HOST[:PORT] --name NAME --to http://127.0.0.1:3000
                (--token-file F | --token T | MINIGATE_TUNNEL_TOKEN=T) [--ca FILE] [--replace]

Serves the local service at --to to phones through your minigate: routes with tunnel: NAME
reach it. Dials one TLS connection to the server's HTTPS port (certificate verified; --ca FILE
trusts a private CA), keeps it alive with pings and reconnects with back-off after any drop.
Prints one line per request (method, path, status, ms) and each change of the link. --replace
takes NAME over from another client holding it. Exit 1 when the server refuses the token.
--token puts the token where \`ps\` shows it; prefer --token-file or MINIGATE_TUNNEL_TOKEN.`;
