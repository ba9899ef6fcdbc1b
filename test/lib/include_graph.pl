#!/usr/bin/perl
# test/lib/include_graph.pl — the modules of src/ must depend on one another
# without a cycle.  A module is a .c file with its .h (or a header alone); it
# depends on every module whose header one of its files includes.  Prints
# the graph and exits 1 naming a cycle if there is one.
#   perl test/lib/include_graph.pl src
use strict;
use warnings;

my $dir = shift // 'src';
my %deps;
opendir(my $dh, $dir) or die "cannot read $dir: $!\n";
for my $file (sort grep { /\.[ch]$/ } readdir $dh)
{
	(my $module = $file) =~ s/\.[ch]$//;
	$deps{$module} //= {};
	open(my $fh, '<', "$dir/$file") or die "cannot read $dir/$file: $!\n";
	while (<$fh>)
	{
		next unless /^\s*#\s*include\s+"([^"\/]+)\.h"/;
		$deps{$module}{$1} = 1 if $1 ne $module && -e "$dir/$1.h";
	}
	close $fh;
}
closedir $dh;

printf "%-20s -> %s\n", $_, join(' ', sort keys %{ $deps{$_} }) for sort keys %deps;

# depth-first search; a module met again while on the path closes a cycle
my (%state, @path);
sub visit
{
	my ($m) = @_;
	$state{$m} = 'open';
	push @path, $m;
	for my $d (sort keys %{ $deps{$m} })
	{
		if (($state{$d} // '') eq 'open')
		{
			my @cycle = @path;
			shift @cycle while $cycle[0] ne $d;
			print STDERR "include cycle: ", join(' -> ', @cycle, $d), "\n";
			exit 1;
		}
		visit($d) unless $state{$d};
	}
	pop @path;
	$state{$m} = 'done';
}
visit($_) for grep { !$state{$_} } sort keys %deps;
print "no include cycle among ", scalar(keys %deps), " modules\n";
exit 0;
