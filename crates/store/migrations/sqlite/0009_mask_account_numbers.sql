-- No full account number is kept (issue 9, item 8). Rerouted bank accounts were stored as
-- `<bank>|<full number>`, and channels echoed them back into received_account. From now on
-- both keep the first four and last four digits (`<bank>|6222********1234`). This masks
-- what earlier versions stored: a trailing run of 8 or more digits. `rtrim(x, digits)`
-- strips that run, so `substr` past it is the number. Audit entries are hash-chained and
-- cannot be rewritten here (docs/decisions.md, issue 9).
UPDATE refunds
SET reroute_account =
        rtrim(reroute_account, '0123456789')
        || substr(substr(reroute_account, length(rtrim(reroute_account, '0123456789')) + 1), 1, 4)
        || substr('******************************', 1,
                  length(reroute_account) - length(rtrim(reroute_account, '0123456789')) - 8)
        || substr(reroute_account, length(reroute_account) - 3)
WHERE reroute_account IS NOT NULL
  AND length(reroute_account) - length(rtrim(reroute_account, '0123456789')) >= 8;

UPDATE refunds
SET received_account =
        rtrim(received_account, '0123456789')
        || substr(substr(received_account, length(rtrim(received_account, '0123456789')) + 1), 1, 4)
        || substr('******************************', 1,
                  length(received_account) - length(rtrim(received_account, '0123456789')) - 8)
        || substr(received_account, length(received_account) - 3)
WHERE received_account IS NOT NULL
  AND length(received_account) - length(rtrim(received_account, '0123456789')) >= 8;
