#!/usr/bin/perl
# test/lib/check_meta.pl — checks META.json against the PGXN meta spec 1.0.0
# (the keys it requires, their types, semantic versions, known licenses and
# prereq phases) and against the extension itself: the version is the control
# file's default_version, and the file it names is the install script the
# Makefile builds.  Prints the problems, one a line, and exits 1 if any.
use strict;
use warnings;
use JSON::PP;

my ($meta_file, $control_file, $makefile) = @ARGV;
my @problems;
sub problem { push @problems, join('', @_) }

sub slurp {
	my ($f) = @_;
	open(my $fh, '<', $f) or die "cannot open $f: $!\n";
	local $/;
	return <$fh>;
}

my $meta = eval { JSON::PP->new->decode(slurp($meta_file)) };
if (!$meta) {
	print "META.json is not valid JSON: $@";
	exit 1;
}

my $semver = qr/^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+)?$/;
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2
  bsd freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0
  mozilla_1_1 openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source restricted
  unrestricted unknown);

for my $key (qw(name abstract version maintainer license provides meta-spec)) {
	problem("required key \"$key\" is missing") unless exists $meta->{$key};
}
problem("name must be a string without spaces") if ($meta->{name} // '') !~ /^[A-Za-z0-9_-]+$/;
problem("version \"", $meta->{version} // '', "\" is not a semantic version")
  if ($meta->{version} // '') !~ $semver;
my $m = $meta->{maintainer};
problem("maintainer must be a string or a list of strings")
  unless defined $m && (!ref $m || (ref $m eq 'ARRAY' && @$m && !grep { ref } @$m));
my $l = $meta->{license};
for my $one (ref $l eq 'ARRAY' ? @$l : ref $l eq 'HASH' ? () : ($l // '')) {
	problem("license \"$one\" is not one the spec names") unless $licenses{$one};
}
problem("meta-spec version must be 1.0.0")
  unless ref $meta->{'meta-spec'} eq 'HASH' && ($meta->{'meta-spec'}{version} // '') eq '1.0.0';
if (exists $meta->{prereqs}) {
	for my $phase (keys %{ $meta->{prereqs} }) {
		problem("prereqs phase \"$phase\" is not configure, build, test, runtime or develop")
		  unless $phase =~ /^(configure|build|test|runtime|develop)$/;
		for my $rel (keys %{ $meta->{prereqs}{$phase} }) {
			problem("prereqs relationship \"$rel\" of phase $phase is unknown")
			  unless $rel =~ /^(requires|recommends|suggests|conflicts)$/;
		}
	}
}
if (exists $meta->{tags}) {
	problem("tags must be a list of strings of at most 255 characters")
	  unless ref $meta->{tags} eq 'ARRAY'
	  && !grep { ref || length > 255 } @{ $meta->{tags} };
}
problem("release_status must be stable, testing or unstable")
  if exists $meta->{release_status} && $meta->{release_status} !~ /^(stable|testing|unstable)$/;

# against the extension
my ($default_version) = slurp($control_file) =~ /^\s*default_version\s*=\s*'([^']+)'/m;
my ($script) = slurp($makefile) =~ /^EXT_SCRIPT\s*=\s*(\S+)/m;
my $expected = defined $default_version ? "$default_version.0" : '(none)';
problem("version ", $meta->{version} // "(none)", " is not the control file's default_version $expected")
  if ($meta->{version} // '') ne $expected;
my $ext = ref $meta->{provides} eq 'HASH' ? $meta->{provides}{$meta->{name} // ''} : undef;
if (!$ext) {
	problem("provides does not list the extension itself");
} else {
	problem("provides: abstract and version are required")
	  unless defined $ext->{abstract} && defined $ext->{version};
	problem("provides: version $ext->{version} is not $expected")
	  if ($ext->{version} // '') ne $expected;
	problem("provides: file $ext->{file} is not the install script the Makefile builds ($script)")
	  if defined $ext->{file} && (!defined $script || $ext->{file} ne $script);
	problem("provides: docfile $ext->{docfile} does not exist")
	  if defined $ext->{docfile} && !-f $ext->{docfile};
}

print "$_\n" for @problems;
exit(@problems ? 1 : 0);
