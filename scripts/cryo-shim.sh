#!/bin/sh
# `npx cryo` from the checkout: runs the native command built by `npm install`.
here=$(dirname "$(readlink -f "$0")")
exec "$here/../native/build/cryo" "$@"
