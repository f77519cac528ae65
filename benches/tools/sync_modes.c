// Cost of one durable 4 KiB/130 B write on this disk in four ways (see benches/RESULTS.md,
// "Can a cheaper sync change the arithmetic?"). gcc -O2 -o /tmp/sync_modes benches/tools/sync_modes.c && /tmp/sync_modes DIR 400
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
// mode 0: zeroed prealloc, pwrite+fdatasync; 1: O_DSYNC buffered pwrite; 2: O_DIRECT|O_DSYNC 4K pwrite; 3: O_DIRECT 4K + fdatasync
static void run(const char*dir,int mode,int n){
  char p[512];snprintf(p,512,"%s/d%d",dir,mode);unlink(p);
  int fd=open(p,O_CREAT|O_RDWR|O_TRUNC,0644);
  char*z=aligned_alloc(4096,1<<20);memset(z,0,1<<20);for(int i=0;i<8;i++)pwrite(fd,z,1<<20,(off_t)i<<20);fdatasync(fd);fsync(fd);close(fd);
  int fl=O_RDWR; if(mode==1)fl|=O_DSYNC; if(mode==2)fl|=O_DIRECT|O_DSYNC; if(mode==3)fl|=O_DIRECT;
  fd=open(p,fl);
  char*buf=aligned_alloc(4096,4096);memset(buf,'x',4096);
  double*t=malloc(n*sizeof(double));off_t off=0;
  double t0=now();
  for(int i=0;i<n;i++){double a=now();
    if(mode>=2){pwrite(fd,buf,4096,off);off+=4096;}else{pwrite(fd,buf,130,off);off+=130;}
    if(mode==0||mode==3)fdatasync(fd);
    t[i]=now()-a;}
  double tot=now()-t0;
  qsort(t,n,sizeof(double),cmp);
  const char*nm[]={"pwrite+fdatasync","O_DSYNC","O_DIRECT|O_DSYNC","O_DIRECT+fdatasync"};
  printf("%-20s mean %.1f us  p10 %.1f p50 %.1f p90 %.1f\n",nm[mode],tot/n,t[n/10],t[n/2],t[n*9/10]);
  close(fd);unlink(p);free(t);
}
int main(int c,char**v){const char*dir=c>1?v[1]:"/tmp";int n=c>2?atoi(v[2]):500;
 for(int r=0;r<3;r++)for(int m=0;m<4;m++)run(dir,m,n);}
