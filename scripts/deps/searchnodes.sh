#!/usr/bin/env bash
# Installs what the Elasticsearch and OpenSearch tests need: for each engine
# (Elasticsearch 8.19, Elasticsearch 9.5, OpenSearch 2.19) its jars, resolved
# by Maven from test/searchnode/<engine>/pom.xml into the test cache, and the
# small launcher of test/searchnode compiled against them. The engines' jars
# are fetched here, never committed: Elastic's licence does not allow
# redistributing them.
#
# Idempotent: an engine whose jars and classes match the current poms and
# sources is left alone. Prints where each engine is installed.
#
# Elasticsearch 8.19 and OpenSearch 2.19 run on Java 17 ($SSPR_JAVA17_HOME,
# default: the JDK of javac on PATH); Elasticsearch 9.5 needs Java 25
# ($SSPR_JAVA25_HOME, default /usr/lib/jvm/temurin-25-jdk-amd64).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/test/searchnode"
CACHE="${SSPR_TEST_CACHE:-$HOME/.cache/sspr-exporter-test}"
JAVA25_HOME="${SSPR_JAVA25_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need_apt=()
if [ -z "${SSPR_JAVA17_HOME:-}" ] && ! command -v javac >/dev/null 2>&1; then
	need_apt+=(openjdk-17-jdk-headless)
fi
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ "${#need_apt[@]}" -gt 0 ]; then
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}"
fi
JAVA17_HOME="${SSPR_JAVA17_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"

# jdk_feature HOME prints the JDK's feature release (17, 25, ...).
jdk_feature() {
	"$1/bin/javac" -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p'
}

if [ "$(jdk_feature "$JAVA17_HOME")" != 17 ]; then
	echo "searchnodes: $JAVA17_HOME is not a Java 17 JDK (javac -version: $("$JAVA17_HOME/bin/javac" -version 2>&1));" >&2
	echo "install openjdk-17-jdk-headless or set SSPR_JAVA17_HOME to a JDK 17" >&2
	exit 1
fi
# version MODULE prints the engine version pinned in MODULE's pom.
version() {
	sed -n 's:.*<engine.version>\(.*\)</engine.version>.*:\1:p' "$SRC/$1/pom.xml"
}

# fingerprint JDK FILE... prints one hash over the JDK's version and the
# files' contents, so that a change of any of them reinstalls.
fingerprint() {
	local jdk="$1"
	shift
	{ "$jdk/bin/javac" -version 2>&1; sha256sum "$@" | cut -d' ' -f1; } | sha256sum | cut -d' ' -f1
}

# link_zstd DIR links the system's libzstd into DIR. Elasticsearch 9 reaches
# native code only through its own library directory, which is not published
# on Maven Central; without zstd there it runs with native access off, and
# shards of best_compression indices fail.
link_zstd() {
	local lib
	lib="$(ldconfig -p 2>/dev/null | awk '/libzstd\.so\.1 /{l = $NF} END {print l}')"
	mkdir -p "$1"
	if [ -z "$lib" ]; then
		echo "searchnodes: no libzstd.so.1 (package libzstd1): Elasticsearch 9 will run with native access off" >&2
		return
	fi
	ln -sfn "$lib" "$1/libzstd.so"
}

# install MODULE JDK RELEASE SOURCE_DIR... resolves MODULE's jars and compiles
# the launcher sources under the SOURCE_DIRs (relative to test/searchnode)
# into $CACHE/searchnode/MODULE-VERSION.
install() {
	local module="$1" jdk="$2" release="$3"
	shift 3
	local ver dest sources=() libs_stamp classes_stamp start=$SECONDS
	ver="$(version "$module")"
	[ -n "$ver" ] || { echo "searchnodes: no <engine.version> in $SRC/$module/pom.xml" >&2; exit 1; }
	dest="$CACHE/searchnode/$module-$ver"
	for d in "$@"; do
		while IFS= read -r f; do sources+=("$f"); done < <(find "$SRC/$d" -name '*.java' | sort)
	done
	libs_stamp="$(sha256sum "$SRC/$module/pom.xml" | cut -d' ' -f1)"
	classes_stamp="$(fingerprint "$jdk" "${BASH_SOURCE[0]}" "$SRC/$module/pom.xml" "${sources[@]}")"
	if [ "$(cat "$dest/.complete" 2>/dev/null)" = "$classes_stamp" ]; then
		echo "$module $ver already installed in $dest"
		return
	fi
	mkdir -p "$dest"
	rm -f "$dest/.complete"

	if [ "$(cat "$dest/lib/.complete" 2>/dev/null)" != "$libs_stamp" ]; then
		rm -rf "$dest/lib"
		# Maven 3.8 prints colour resets on both streams even in quiet batch mode.
		mvn -B -q -Dstyle.color=never -f "$SRC/$module/pom.xml" dependency:copy-dependencies \
			-DincludeScope=runtime -DoutputDirectory="$dest/lib" 2>&1 | sed $'s/\e\\[0m//g'
		echo "$libs_stamp" >"$dest/lib/.complete"
	fi

	rm -rf "$dest/classes"
	"$jdk/bin/javac" --release "$release" -encoding UTF-8 -cp "$dest/lib/*" -d "$dest/classes" "${sources[@]}"
	if [ "$module" = es9 ]; then
		link_zstd "$dest/native"
	fi
	# The helper runs the node with the JDK it was compiled for.
	echo "$jdk/bin/java" >"$dest/java"
	echo "$classes_stamp" >"$dest/.complete"
	echo "$module $ver installed in $dest ($((SECONDS - start)) s, jars $(du -sh "$dest/lib" | cut -f1))"
}

install es8 "$JAVA17_HOME" 17 common elasticsearch es8
install opensearch2 "$JAVA17_HOME" 17 common opensearch2
# Last, so that the Java 17 engines are installed even where Java 25 is not.
if [ ! -x "$JAVA25_HOME/bin/javac" ] || [ "$(jdk_feature "$JAVA25_HOME")" != 25 ]; then
	cat >&2 <<MSG
searchnodes: Elasticsearch 9.5 needs a Java 25 JDK, and none is at $JAVA25_HOME.
Install Eclipse Temurin 25 there (the temurin-25-jdk package from Adoptium's
apt repository, or its tarball unpacked to that path), or set SSPR_JAVA25_HOME
to the home of any JDK 25.
MSG
	exit 1
fi
# Elasticsearch 9 is compiled for Java 21 and runs on 25.
install es9 "$JAVA25_HOME" 21 common elasticsearch es9
