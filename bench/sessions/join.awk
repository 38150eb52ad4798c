# join.awk -- the same join mxgate-sessions --summary does, in gawk, as the
# benchmark's yardstick: sessions by pid between "pid P from" and "end P",
# decisions counted by row, rejections by client IP.
{
  msg = $0; sub(/^@[0-9a-f]+ /, "", msg)
  if (msg ~ /^tcpserver: pid /) { split(msg, f, " "); open[f[3]] = f[5]; next }
  if (msg ~ /^tcpserver: end /) { split(msg, f, " "); delete open[f[3]]; sessions++; next }
  if (msg ~ /^qmail-(smtpd|popup): pid /) {
    split(msg, f, " "); row = f[4]; sub(/:$/, "", row); rows[row]++
    if (row ~ /^Reject/) bad[open[f[3]]]++
    next
  }
  if (msg ~ /^rblsmtpd: /) { rbl++; next }
}
END {
  print sessions " sessions, " rbl " rbl"
  for (r in rows) print rows[r], r
}
