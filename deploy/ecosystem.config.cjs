/**
 * pm2 process file for minigate: `pm2 start deploy/ecosystem.config.cjs`.
 *
 * Fork mode, on purpose. minigate runs its own workers (`workers: auto` or a number >= 2 in
 * minigate.yaml) under its own primary, which owns the listeners, counts the limits and relays
 * the channel between workers without needing Redis. pm2's cluster mode would make pm2 that
 * primary instead; minigate refuses to start that way.
 *
 * Zero-downtime reload: `pm2 sendSignal SIGUSR2 minigate`. The primary replaces its workers one
 * at a time, each new one listening before the old one drains; new code on disk is picked up by
 * the workers. `pm2 reload` in fork mode is a plain restart (connections are refused for a moment)
 * and is only needed to restart the primary itself, e.g. after a Node upgrade.
 *
 * Paths are examples (not MINIGATE_… variables: those are config keys): MG_BIN (where `npm install -g minigate` put the command, see
 * `command -v minigate`) and MG_CONFIG.
 */
module.exports = {
  apps: [
    {
      name: process.env.MG_PM2_NAME || 'minigate',
      script: process.env.MG_BIN || '/usr/local/bin/minigate',
      args: ['start', '-c', process.env.MG_CONFIG || '/etc/minigate/minigate.yaml'],
      exec_mode: 'fork',
      instances: 1,
      // minigate drains on SIGTERM; pm2's default would be SIGINT and a kill after 1.6 s.
      kill_signal: 'SIGTERM',
      // Longer than the workers' 20 s grace before they are killed.
      kill_timeout: 30000,
      // A config that cannot start will not start on the next try either: give up after a few.
      min_uptime: 5000,
      max_restarts: 10,
      exp_backoff_restart_delay: 200,
      autorestart: true,
      merge_logs: true,
      time: false,
      env: {
        NODE_ENV: 'production',
      },
    },
  ],
};
