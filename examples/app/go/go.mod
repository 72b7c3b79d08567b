module github.com/wxauth/caddy-wxauth/examples/app/go

go 1.22

require github.com/standard-webhooks/standard-webhooks/libraries v0.0.1
