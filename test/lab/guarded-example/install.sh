#!/bin/sh
# Installs the gatekeeper example daemon in the lab node: a path unit that
# watches /etc/gatekeeper/allow and a oneshot service that turns the names in
# it into sshd's AllowUsers and reloads sshd. Used by the lab test of the
# guarded example step (test/lab/87-guarded-on-write.test.ts).
set -eu
mkdir -p /etc/gatekeeper
cat > /usr/local/sbin/gatekeeper-apply <<'EOF'
#!/bin/sh
set -eu
users=$(grep -v '^#' /etc/gatekeeper/allow 2>/dev/null | tr -s ' \n' '  ' | sed 's/^ *//; s/ *$//')
tmp=/etc/ssh/sshd_config.d/.01-gatekeeper.conf.tmp
if [ -n "$users" ]; then
  printf 'AllowUsers %s\n' "$users" > "$tmp"
  mv -f "$tmp" /etc/ssh/sshd_config.d/01-gatekeeper.conf
else
  rm -f /etc/ssh/sshd_config.d/01-gatekeeper.conf
fi
systemctl reload ssh
echo "$(date +%s.%N) ${users:-(everyone)}" >> /run/gatekeeper.applied
EOF
chmod 0755 /usr/local/sbin/gatekeeper-apply
cat > /etc/systemd/system/gatekeeper.service <<'EOF'
[Unit]
Description=gatekeeper example: apply /etc/gatekeeper/allow to sshd

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/gatekeeper-apply
EOF
cat > /etc/systemd/system/gatekeeper.path <<'EOF'
[Unit]
Description=gatekeeper example: watch /etc/gatekeeper/allow

[Path]
PathChanged=/etc/gatekeeper/allow
Unit=gatekeeper.service

[Install]
WantedBy=multi-user.target
EOF
printf '# Written by the lab: everyone the test needs.\nroot\nbob\n' > /etc/gatekeeper/allow
id bob >/dev/null 2>&1 || useradd -m -s /bin/sh bob
echo 'bob:bob-lab-password-1' | chpasswd
systemctl daemon-reload
systemctl enable --now gatekeeper.path >/dev/null 2>&1
systemctl start gatekeeper.service
