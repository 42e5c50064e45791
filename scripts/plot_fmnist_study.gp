# Plots of the Fashion-MNIST convergence study (bench/fashion_mnist/run_study.sh runs this script).
#   gnuplot -e "dir='out/fmnist_study/main'; img='docs/img'; algos='sync-sgd lsgd ...'" scripts/plot_fmnist_study.gp
# `algos` lists the study's labels with '+', '=' and '/' written as '_' (the file names), `titles` (optional) the
# legend entries in the same order. Reads <dir>/best_<algorithm>.dat (epoch, accuracy % mean/min/max over seeds, MB received per worker, training s)
# and writes <img>/<prefix>accuracy_vs_epoch.png, ..._vs_bytes.png, ..._vs_time.png (prefix: default 'fmnist_');
# `subtitle` is appended to the titles.
if (!exists("dir")) dir = 'out/fmnist_study/main'
if (!exists("img")) img = 'docs/img'
if (!exists("algos")) algos = 'sync-sgd lsgd lsgd-grouped easgd eamsgd local-sgd overlap-local-sgd'
if (!exists("titles")) titles = algos
if (!exists("subtitle")) subtitle = ''
if (!exists("prefix")) prefix = 'fmnist_'

if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
  set terminal pngcairo enhanced size 960,600 font 'Sans,10'
} else {
  set terminal png size 960,600
}
# Line types 1-8: gnuplot's default colours; 9-12: the first colours again, dashed.
set linetype 9 lc rgb '#9400d3' dt 2
set linetype 10 lc rgb '#009e73' dt 2
set linetype 11 lc rgb '#56b4e9' dt 2
set linetype 12 lc rgb '#e69f00' dt 2
file(a) = sprintf('%s/best_%s.dat', dir, a)
n = words(algos)
set grid
set key bottom right noenhanced
set yrange [80:91]
set ylabel 'test accuracy (%), mean over seeds'
set arrow 1 from graph 0, first 88 to graph 1, first 88 nohead dashtype 2 lc rgb '#999999'
set arrow 2 from graph 0, first 89 to graph 1, first 89 nohead dashtype 3 lc rgb '#999999'

set output img.'/'.prefix.'accuracy_vs_epoch.png'
set title 'Fashion-MNIST MLP, p = 4: accuracy against epochs (bars: min-max over seeds)'.subtitle noenhanced
set xlabel 'epoch'
set xrange [0.5:*]
set xtics 1
plot for [i=1:n] file(word(algos, i)) using ($1+0.04*(i-(n+1)/2.0)):2:3:4 every ::1 with yerrorlines lw 2 pt 7 ps 0.7 lt i title word(titles, i)

set output img.'/'.prefix.'accuracy_vs_bytes.png'
set title 'Fashion-MNIST MLP, p = 4: accuracy against bytes received per worker'.subtitle noenhanced
set xlabel 'MB received per worker (log scale)'
set logscale x
set xtics autofreq
set xrange [*:*]
plot for [i=1:n] file(word(algos, i)) using ($5 > 0 ? $5 : 1/0):2 every ::1 with linespoints lw 2 pt 7 ps 0.7 lt i title word(titles, i)
unset logscale x

set output img.'/'.prefix.'accuracy_vs_time.png'
set title 'Fashion-MNIST MLP, p = 4 threads on 2 shared cores: accuracy against training wall time'.subtitle noenhanced
set xlabel 'training seconds (evaluations excluded), mean over seeds'
set xrange [0:*]
plot for [i=1:n] file(word(algos, i)) using 6:2 every ::1 with linespoints lw 2 pt 7 ps 0.7 lt i title word(titles, i)
