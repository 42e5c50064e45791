# Plots of the cluster study (bench/fashion_mnist/run_cluster_study.sh runs this script after cluster_summary.py).
#   gnuplot -e "dir='out/cluster_study'; img='docs/img'; layout='4x1'" scripts/plot_cluster_study.gp
# Reads <dir>/plot/<layout>_<rate>_<algorithm>.dat (epoch, training s, test accuracy %, means over the seeds) and
# writes <img>/cluster_accuracy_vs_time_<layout>.png: one panel per link rate, test accuracy against training
# wall time (log scale), one line per algorithm, a point per epoch.
if (!exists("dir")) dir = 'out/cluster_study'
if (!exists("img")) img = 'docs/img'
if (!exists("layout")) layout = '4x1'

if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
  set terminal pngcairo enhanced size 1500,560 font 'Sans,10'
} else {
  set terminal png size 1500,560
}
set output sprintf('%s/cluster_accuracy_vs_time_%s.png', img, layout)
set linetype 9 lc rgb '#9400d3' dt 2
set linetype 10 lc rgb '#009e73' dt 2
set linetype 11 lc rgb '#56b4e9' dt 2
set linetype 12 lc rgb '#e69f00' dt 2
rates = '100mbit 1gbit unlimited'
labels = '"100 Mbit/s" "1 Gbit/s" "unlimited"'
hosts = substr(layout, 1, strstrt(layout, 'x') - 1)
per_host = substr(layout, strstrt(layout, 'x') + 1, strlen(layout))
set multiplot layout 1,3 title sprintf('Fashion-MNIST MLP on the emulated cluster, %s hosts x %s rank(s) per host, 8 epochs: test accuracy against training time', hosts, per_host)
set grid
set logscale x
set yrange [80:90.5]
set xlabel 'training wall time (s, log scale)'
set ylabel 'test accuracy (%)'
set key bottom right noenhanced font ',8'
do for [k=1:3] {
  rate = word(rates, k)
  files = system(sprintf('ls %s/plot/%s_%s_*.dat 2>/dev/null', dir, layout, rate))
  set title word(labels, k)
  set arrow 1 from graph 0, first 88 to graph 1, first 88 nohead dashtype 2 lc rgb '#999999'
  prefix = sprintf('%s/plot/%s_%s_', dir, layout, rate)
  plot for [i=1:words(files)] word(files, i) every ::1 using 2:3 with linespoints lt i pt 7 ps 0.5 \
       title substr(word(files, i), strlen(prefix) + 1, strlen(word(files, i)) - 4)
}
unset multiplot
